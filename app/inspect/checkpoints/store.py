"""The store of opened checkpoints (app.state.checkpoints) and files under --data-dir."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchscope.inspect.checkpoints.checkpoint import Checkpoint
from torchscope.inspect.checkpoints.formats import open_checkpoint
from torchscope.inspect.checkpoints.isolation import Isolation
from torchscope.inspect.checkpoints.records import CHECKPOINT_SUFFIXES, slug
from torchscope.inspect.errors import InspectError, InvalidRequest, NotFound

log = logging.getLogger("torchscope")

MAX_NAME_BYTES = 255  # NAME_MAX on Linux: longer names are refused before the OS is asked
MAX_PATH_BYTES = 4096

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
    """Opened checkpoints by id, plus the files that could not be opened at startup.

    Untrusted files are opened by ``isolation`` (worker processes within budgets) when given;
    files named with --trust-pickle are opened here (the user vouched for them). The lock
    guards only the id table: one slow open never holds up the others (issue 9).
    """

    def __init__(self, trusted_paths: Sequence[str | os.PathLike[str]] = (), isolation: Isolation | None = None) -> None:
        self._items: dict[str, Checkpoint] = {}
        self._reserved: set[str] = set()
        self._lock = threading.RLock()
        self.trusted_paths = [Path(t) for t in trusted_paths]
        self.failures: list[OpenFailure] = []
        self.isolation = isolation

    def _new_id(self, name: str) -> str:
        base = slug(name)
        cid, n = base, 2
        while cid in self._items or cid in self._reserved:
            cid, n = f"{base}-{n}", n + 1
        return cid

    def _trusted(self, p: Path) -> bool:
        try:
            resolved = p.resolve()
            return any(t.resolve() == resolved for t in self.trusted_paths)
        except (OSError, RuntimeError, ValueError):
            return False

    def open(self, path: str | os.PathLike[str], *, name: str | None = None, uploaded: bool = False) -> Checkpoint:
        """Open a file (trusted only if named with --trust-pickle; uploads never are)."""
        p = Path(path)
        with self._lock:
            cid = self._new_id(name or p.name)
            self._reserved.add(cid)
        try:
            trusted = not uploaded and self._trusted(p)
            if self.isolation is not None and not trusted:
                ckpt = self.isolation.open(p, cid=cid, name=name, allow_shards=not uploaded)
            else:
                ckpt = open_checkpoint(
                    p, trusted_paths=[p] if trusted else (), cid=cid, name=name, allow_shards=not uploaded
                )
            ckpt.uploaded = uploaded
            with self._lock:
                self._items[cid] = ckpt
            return ckpt
        finally:
            with self._lock:
                self._reserved.discard(cid)

    def open_startup(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Open --checkpoint files; a refused, broken or hostile one is recorded, never fatal."""
        for path in paths:
            try:
                self.open(path)
            except InspectError as err:
                self.failures.append(OpenFailure(str(path), err.message, err.status))
            except Exception as err:  # a bug, not the file: logged in full, recorded briefly
                log.error("opening --checkpoint %s failed", path, exc_info=err)
                self.failures.append(OpenFailure(str(path), f"could not be opened ({type(err).__name__})", 500))

    def get(self, cid: str) -> Checkpoint:
        try:
            return self._items[cid]
        except KeyError:
            raise NotFound(f"no checkpoint with id {cid!r}", checkpoint=cid) from None

    def remove(self, cid: str) -> None:
        with self._lock:
            self.get(cid).close()
            del self._items[cid]

    def uploaded_bytes(self) -> int:
        """Disk used by the uploads kept open (for the upload quota)."""
        total = 0
        for ckpt in self:
            if ckpt.uploaded:
                with contextlib.suppress(OSError):  # already deleted: it uses no disk
                    total += ckpt.path.stat().st_size
        return total

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        for ckpt in self:
            ckpt.close()
        if self.isolation is not None:
            self.isolation.close()


def resolve_in_data_dir(data_dir: Path | None, relpath: str) -> Path:
    """``relpath`` under ``data_dir``, refusing anything that escapes it (``..``, absolute paths, symlinks out)."""
    if data_dir is None:
        raise InvalidRequest("opening files by path needs torchscope started with --data-dir DIR", rule="data_dir")
    shown = relpath[:200]
    if "\x00" in relpath:
        raise InvalidRequest(f"{shown!r}: a path cannot contain a NUL byte", rule="data_dir")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in relpath.split("/")) or len(relpath.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidRequest(f"{shown!r}: a name is over {MAX_NAME_BYTES} bytes (or the path over {MAX_PATH_BYTES})", rule="data_dir")
    root = Path(data_dir).resolve()
    rel = Path(relpath)
    if not relpath or rel.is_absolute() or relpath.startswith(("/", "\\")):
        raise InvalidRequest(f"{shown!r}: give a path relative to the data directory", rule="data_dir")
    try:
        target = (root / rel).resolve(strict=False)
        inside = target.is_relative_to(root)
        exists = inside and target.exists()
        is_file = exists and target.is_file()
    except RuntimeError:  # Python 3.11 reports a symlink loop so
        raise InvalidRequest(f"{shown!r}: a symlink loop", rule="data_dir") from None
    except (OSError, ValueError) as err:
        raise InvalidRequest(f"{shown!r} cannot be resolved: {getattr(err, 'strerror', None) or 'invalid name'}", rule="data_dir") from None
    if not inside:
        raise InvalidRequest(f"{shown!r} is outside the data directory", rule="data_dir")
    if not exists:
        raise NotFound(f"no file {shown!r} in the data directory")
    if not is_file:
        raise InvalidRequest(f"{shown!r} is not a file", rule="data_dir")
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
            try:  # a symlink loop, a dangling link or an odd name skips that entry, never the listing
                real = full.resolve()
                if not real.is_relative_to(root) or not real.is_file():
                    continue
                out.append({"path": full.relative_to(root).as_posix(), "bytes": real.stat().st_size})
            except (OSError, RuntimeError, ValueError):
                continue
            if len(out) >= limit:
                return out
    return out
