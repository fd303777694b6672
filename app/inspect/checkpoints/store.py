"""The store of opened checkpoints (app.state.checkpoints) and files under --data-dir."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchscope.inspect.checkpoints.checkpoint import Checkpoint
from torchscope.inspect.checkpoints.formats import open_checkpoint
from torchscope.inspect.checkpoints.records import CHECKPOINT_SUFFIXES, slug
from torchscope.inspect.errors import InspectError, InvalidRequest, NotFound

# ---------------------------------------------------------------------------
# The store of opened checkpoints (lives on app.state.checkpoints)


@dataclass(frozen=True)
class OpenFailure:
    path: str
    message: str
    status: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "detail": self.message, "status": self.status}


class CheckpointStore:
    """Opened checkpoints by id, plus the files that could not be opened at startup."""

    def __init__(self, trusted_paths: Sequence[str | os.PathLike[str]] = ()) -> None:
        self._items: dict[str, Checkpoint] = {}
        self._lock = threading.RLock()
        self.trusted_paths = [Path(t) for t in trusted_paths]
        self.failures: list[OpenFailure] = []

    def _new_id(self, name: str) -> str:
        base = slug(name)
        cid, n = base, 2
        while cid in self._items:
            cid, n = f"{base}-{n}", n + 1
        return cid

    def open(self, path: str | os.PathLike[str], *, name: str | None = None, uploaded: bool = False) -> Checkpoint:
        """Open a file (trusted only if named with --trust-pickle; uploads never are)."""
        p = Path(path)
        with self._lock:
            cid = self._new_id(name or p.name)
            ckpt = open_checkpoint(p, trusted_paths=() if uploaded else self.trusted_paths, cid=cid, name=name)
            ckpt.uploaded = uploaded
            self._items[cid] = ckpt
            return ckpt

    def open_startup(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Open --checkpoint files; a refused or broken one is recorded, not fatal."""
        for path in paths:
            try:
                self.open(path)
            except InspectError as err:
                self.failures.append(OpenFailure(str(path), err.message, err.status))

    def get(self, cid: str) -> Checkpoint:
        try:
            return self._items[cid]
        except KeyError:
            raise NotFound(f"no checkpoint with id {cid!r}", checkpoint=cid) from None

    def remove(self, cid: str) -> None:
        with self._lock:
            self.get(cid).close()
            del self._items[cid]

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        for ckpt in self:
            ckpt.close()


def resolve_in_data_dir(data_dir: Path | None, relpath: str) -> Path:
    """``relpath`` under ``data_dir``, refusing anything that escapes it (``..``, absolute paths, symlinks out)."""
    if data_dir is None:
        raise InvalidRequest("opening files by path needs torchscope started with --data-dir DIR", rule="data_dir")
    root = Path(data_dir).resolve()
    rel = Path(relpath)
    if not relpath or rel.is_absolute() or relpath.startswith(("/", "\\")):
        raise InvalidRequest(f"{relpath!r}: give a path relative to the data directory", rule="data_dir")
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise InvalidRequest(f"{relpath!r} is outside the data directory", rule="data_dir")
    if not target.exists():
        raise NotFound(f"no file {relpath!r} in the data directory")
    if not target.is_file():
        raise InvalidRequest(f"{relpath!r} is not a file", rule="data_dir")
    return target


def list_data_dir(data_dir: Path | None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Checkpoint-like files under ``data_dir`` (no symlinks that leave it), relative paths."""
    if data_dir is None:
        return []
    root = Path(data_dir).resolve()
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if not fname.lower().endswith(CHECKPOINT_SUFFIXES):
                continue
            full = Path(dirpath) / fname
            real = full.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue
            out.append({"path": full.relative_to(root).as_posix(), "bytes": real.stat().st_size})
            if len(out) >= limit:
                return out
    return out
