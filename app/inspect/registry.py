"""Served models: the loaded nn.Modules, their ids, and the snapshot that makes reset exact."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from app.inspect.errors import NotFound

T = TypeVar("T")


def _named_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every distinct parameter and buffer, persistent or not, by its first name."""
    yield from module.named_parameters()
    yield from module.named_buffers()


@dataclass(eq=False)
class LoadedModel:
    """One model served by torchscope.

    ``lock`` serialises everything that reads or changes the weights (FastAPI
    runs plain ``def`` endpoints in a thread pool). ``original`` is filled the
    first time anything changes the weights, so ``reset()`` is bit-exact.
    """

    id: str
    name: str
    spec: str
    module: nn.Module
    meta: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    original: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    # Structure views (counts, tree, tables) memoised until the next changed().
    # Only this server touches the served module and it never runs forward(), so
    # its structure changes only through our own actions, which call changed().
    version: int = 0
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def class_name(self) -> str:
        return type(self.module).__name__

    @property
    def modified(self) -> bool:
        return self.original is not None

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per structure version (call under ``lock``)."""
        with self.lock:
            if key not in self._memo:
                self._memo[key] = compute()
            value: T = self._memo[key]
            return value

    def changed(self) -> None:
        """Call after anything that may change parameters/buffers (objects, shapes, dtypes, flags)."""
        with self.lock:
            self.version += 1
            self._memo.clear()

    def ensure_original(self) -> None:
        """Keep a bit-exact copy of the current weights; call before any change."""
        with self.lock:
            if self.original is None:
                self.original = {
                    name: t.detach().clone() for name, t in _named_tensors(self.module)
                }

    @torch.no_grad()
    def reset(self) -> int:
        """Restore the weights kept by ``ensure_original``; returns the tensors restored."""
        with self.lock:
            if self.original is None:
                return 0
            current = dict(_named_tensors(self.module))
            for name, saved in self.original.items():
                tensor = current.get(name)
                if tensor is None:
                    continue
                if tensor.shape == saved.shape and tensor.dtype == saved.dtype:
                    tensor.copy_(saved)
                else:  # something replaced the tensor (e.g. a non-strict load): put it back
                    tensor.data = saved.clone()
            self.changed()
            return len(self.original)


def slugify(text: str) -> str:
    """A URL-safe id: lowercase letters, digits, ``-`` and ``_``."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return slug or "model"


class ModelRegistry:
    """The served models, in the order their SPECs were given."""

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}

    def add(self, name: str, spec: str, module: nn.Module, *, meta: bool = False) -> LoadedModel:
        base = slugify(name)
        model_id, n = base, 2
        while model_id in self._models:
            model_id, n = f"{base}-{n}", n + 1
        loaded = LoadedModel(id=model_id, name=name, spec=spec, module=module, meta=meta)
        self._models[model_id] = loaded
        return loaded

    def get(self, model_id: str) -> LoadedModel:
        try:
            return self._models[model_id]
        except KeyError:
            raise NotFound(f"no model with id {model_id!r}", model=model_id) from None

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
