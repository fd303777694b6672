"""Where tensors are materialised from, one at a time."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import torch

from torchscope.inspect.checkpoints.records import Group
from torchscope.inspect.checkpoints.unpickler import torch_load
from torchscope.inspect.checkpoints.walk import Walk, walk_into

# ---------------------------------------------------------------------------
# Sources: where tensors are materialised from


class Source:
    def tensor(self, key: str) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class ObjectSource(Source):
    """Tensors already loaded (mmap-backed for torch zip archives)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._tensors = tensors

    def tensor(self, key: str) -> torch.Tensor:
        return self._tensors[key]


class TorchZipSource(Source):
    """``torch.load(mmap=True, weights_only=...)`` on first use: storages are mapped, not read.

    ``mmap=False`` for the legacy format (torch cannot map it). Picklable: a worker process that
    listed the file sends this back, and the server loads tensors from the file itself.
    """

    def __init__(self, path: Path, trusted: bool, mmap: bool = True) -> None:
        self._path = path
        self._trusted = trusted
        self._mmap = mmap
        self._tensors: dict[str, torch.Tensor] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {"path": self._path, "trusted": self._trusted, "mmap": self._mmap}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["path"], state["trusted"], state["mmap"])  # type: ignore[misc]

    def tensor(self, key: str) -> torch.Tensor:
        with self._lock:
            if self._tensors is None:
                obj = torch_load(self._path, trusted=self._trusted, mmap=self._mmap)
                walk = Walk()
                walk_into(obj, "", walk, Group.OTHER)
                self._tensors = walk.tensors
        return self._tensors[key]

    def close(self) -> None:
        self._tensors = None
