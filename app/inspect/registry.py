"""Served models: the loaded nn.Modules, their ids, and the snapshot that makes reset exact."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from torchscope.inspect.errors import NotFound
from torchscope.inspect.live import Change, ModelWatch

T = TypeVar("T")

# Prefix of memo keys that depend on the weights' values, not only on the structure.
VALUES = "values:"


@dataclass
class Slot:
    """A memoised outcome of slow work done outside the model's lock: ``loaded.memo(key, Slot)``.

    It has its own lock, so slow work (a forward, a graph capture) holds up only requests for
    the same answer; the model's lock is held only while the model itself is read. ``key``
    says which inputs ``outcome`` is for (the last given ones replace the previous).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    key: str | None = None
    outcome: Any = None


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
    doc: str = ""  # first line of the docstring of what the SPEC names
    inputs: Any = None  # example inputs of --inputs (forward.sources.ResolvedInputs), issue 10
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    original: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    # Init-lab plans applied since the original weights (as their JSON): shown while modified.
    applied: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # Structure views (counts, tree, tables) memoised until the next changed().
    # A model loaded by the CLI changes only through this server's own actions, which
    # call changed(); one served from Python (torchscope.show) is also changed by its
    # owner, and sync() follows it (``watch``: app/inspect/live.py).
    # Keys starting with VALUES (statistics of the weights) are also forgotten by
    # ensure_original(), which every action calls before it writes weights in place,
    # and by sync() when the owner wrote weights.
    version: int = 0
    # Bumped by every change, of structure or of values: what an open page polls.
    revision: int = 0
    watch: ModelWatch | None = field(default=None, repr=False)
    _checked_at: float = field(default=float("-inf"), repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _stamps: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def class_name(self) -> str:
        return type(self.module).__name__

    @property
    def modified(self) -> bool:
        return bool(self.original)

    def memo(self, key: str, compute: Callable[[], T], stamp: Callable[[], object] | None = None) -> T:
        """``compute()`` once per structure version (call under ``lock``).

        ``stamp`` (for VALUES keys): a digest of the tensors ``compute`` reads (live.content_stamp).
        A model served from Python can be written in ways its version counters do not show
        (``p.data.normal_()``): there a VALUES entry is reused only while its stamp is unchanged,
        and one without a stamp is not kept. Models the CLI loaded never compute it.
        """
        with self.lock:
            if self.watch is not None and key.startswith(VALUES):
                if stamp is None:
                    return compute()
                now = stamp()
                if self._stamps.get(key) != now:
                    self._memo.pop(key, None)
                    self._stamps[key] = now
            if key not in self._memo:
                self._memo[key] = compute()
            value: T = self._memo[key]
            return value

    def _forget_values(self) -> None:
        for key in [k for k in self._memo if k.startswith(VALUES)]:
            del self._memo[key]

    def changed(self) -> None:
        """Call after anything that may change parameters/buffers (objects, shapes, dtypes, flags)."""
        with self.lock:
            self.version += 1
            self.revision += 1
            self._memo.clear()

    def touched(self) -> None:
        """Call after changing values only (shapes, dtypes and objects kept): open pages are told."""
        with self.lock:
            self.revision += 1

    def sync(self) -> int:
        """Follow changes made outside the server (models served from Python); returns ``revision``.

        Free for models the CLI loaded (no ``watch``). A live model whose modules or tensors
        were replaced by its owner also forgets the originals kept for reset(): writing them
        back into the owner's new tensors is not what "reset" can mean.
        """
        if self.watch is None:
            return self.revision
        asked = time.monotonic()
        with self.lock:
            # Requests of one page load come together and queue on the lock: a check that
            # started after this call was made has seen everything this call could see.
            if self._checked_at >= asked:
                return self.revision
            self._checked_at = time.monotonic()
            change = self.watch.check()
            if change is Change.STRUCTURE:
                if self.watch.replaced:
                    self.original = None
                    self.applied = []
                self.changed()
            elif change is Change.VALUES:
                self._forget_values()  # memoised statistics of the weights; structure views stay
                self.revision += 1
            return self.revision

    def ensure_original(self, tensors: Iterable[torch.Tensor] | None = None) -> None:
        """Keep a bit-exact copy of weights before they change; call before any change.

        ``tensors``: only those about to change (an init rule on ``*.bias`` copies the
        biases, not a billion-parameter model); ``None`` keeps every tensor.
        """
        with self.lock:
            self._forget_values()  # the statistics memoised so far are about to be stale
            saved = self.original if self.original is not None else {}
            named = list(_named_tensors(self.module))
            if tensors is None:
                wanted = named
            else:
                by_id = {id(t): name for name, t in named}
                ids = {id(t) for t in tensors}
                if not ids <= by_id.keys():  # a tensor we cannot name: keep everything, to be safe
                    wanted = named
                else:
                    wanted = [(by_id[i], t) for name, t in named for i in [id(t)] if i in ids]
            for name, t in wanted:
                if name not in saved:
                    saved[name] = t.detach().clone()
            self.original = saved

    @torch.no_grad()
    def reset(self) -> int:
        """Restore the weights kept by ``ensure_original``; returns how many tensors were restored."""
        with self.lock:
            if not self.original:
                self.applied = []
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
            restored = len(self.original)
            # The weights are the original again: nothing to keep until the next change.
            self.original = None
            self.applied = []
            self.changed()
            return restored


def slugify(text: str) -> str:
    """A URL-safe id: lowercase letters, digits, ``-`` and ``_``."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return slug or "model"


class ModelRegistry:
    """The served models, in the order their SPECs were given."""

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        # torchscope.show() adds models to a running server, from the user's thread.
        self._lock = threading.Lock()

    def add(
        self, name: str, spec: str, module: nn.Module, *, meta: bool = False, replace: bool = False
    ) -> LoadedModel:
        """Serve ``module``; ``replace``: a model of the same name gives up its id (and its place)."""
        base = slugify(name)
        with self._lock:
            model_id, n = base, 2
            while model_id in self._models and not replace:
                model_id, n = f"{base}-{n}", n + 1
            loaded = LoadedModel(id=model_id, name=name, spec=spec, module=module, meta=meta)
            old = self._models.get(model_id)
            if old is not None:  # pages open on the replaced model must see a newer revision
                loaded.version, loaded.revision = old.version + 1, old.revision + 1
            self._models[model_id] = loaded
            return loaded

    def get(self, model_id: str) -> LoadedModel:
        """The model, synced with what its owner changed (models served from Python)."""
        try:
            loaded = self._models[model_id]
        except KeyError:
            raise NotFound(f"no model with id {model_id!r}", model=model_id) from None
        loaded.sync()
        return loaded

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(list(self._models.values()))  # a copy: show() may add models meanwhile

    def __len__(self) -> int:
        return len(self._models)
