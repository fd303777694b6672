"""Untrusted files are opened in a small pool of worker processes, within memory and time budgets (issue 9).

The in-process budgets (``budgets.py``, the JSON limits, the walk's visit count) make every
known attack a precise 422. This is the net under them, for what cannot be proven in advance:
a worker runs ``open_checkpoint`` with ``RLIMIT_AS`` set to its own size plus a budget and the
file's size, and is killed past a time limit. A crash (a C-level recursion, SIGSEGV), a memory
bomb or a hang costs one worker, and the server answers 422 "this file could not be read
safely: ..." and lives on. What comes back is only the listing (metadata); tensors are read
later, in the server, from files that the worker has already proven readable.

Workers are forked from a forkserver that has imported torch once (the server has threads, so
plain fork is unsafe there); the one-shot ``torchscope inspect`` command forks directly.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from torchscope.inspect.checkpoints.checkpoint import Checkpoint
from torchscope.inspect.checkpoints.formats import open_checkpoint
from torchscope.inspect.checkpoints.records import (
    CheckpointFormat,
    UnreadableCheckpoint,
    first_line,
)
from torchscope.inspect.checkpoints.sources import ObjectSource, TorchZipSource
from torchscope.inspect.errors import InspectError

log = logging.getLogger("torchscope")

DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_WORKERS = 2


class UnsafeToRead(UnreadableCheckpoint):
    """The worker crashed, ran out of its memory budget or time: the file is refused."""

    status = 422


def open_untrusted(path: str, cid: str, name: str | None, allow_shards: bool) -> Checkpoint:
    """What a worker runs: open the file, then keep only what can cross back to the server."""
    ckpt = open_checkpoint(path, cid=cid, name=name, allow_shards=allow_shards)
    if isinstance(ckpt.source, ObjectSource):
        # torch.load already read these in the worker; the server re-reads them on first use
        # (the file is now known to load within the budgets).
        ckpt.source = TorchZipSource(ckpt.path, trusted=False, mmap=ckpt.format is not CheckpointFormat.TORCH_LEGACY)
    return ckpt


# --------------------------------------------------------------------------- the worker side


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker_main(conn: Connection) -> None:
    """Run tasks until the pipe closes; each under an address-space limit of (own size + budget)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    while True:
        try:
            fn, args, kwargs, budget = conn.recv()
        except (EOFError, OSError):
            return
        fatal = False
        try:
            limit = _vm_size() + budget
            if hard == resource.RLIM_INFINITY or limit < hard:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            reply: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
        except InspectError as err:
            reply = ("inspect", type(err), err.message, err.extra)
        except MemoryError:
            reply, fatal = ("memory",), True
        except RecursionError:
            reply = ("error", "its objects nest too deeply")
        except Exception as err:  # a hostile file may make anything raise: report its kind, log the rest
            traceback.print_exc()
            reply = ("error", f"{type(err).__name__}: {first_line(err)}")
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        try:
            conn.send(reply)
        except Exception as err:  # the listing itself could not be sent (e.g. too deep to pickle)
            conn.send(("error", f"its listing cannot be returned ({type(err).__name__})"))
        if fatal:  # a MemoryError can leave the interpreter in a poor state: start afresh
            return


# --------------------------------------------------------------------------- the server side


@dataclass
class _Worker:
    process: Any
    conn: Connection


@dataclass
class Isolation:
    """A few worker processes that open untrusted files within fixed budgets."""

    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    workers: int = DEFAULT_WORKERS
    method: str = "forkserver"
    _idle: list[_Worker] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _slots: threading.Semaphore = field(init=False, repr=False)
    _closed: bool = False

    def __post_init__(self) -> None:
        self._slots = threading.Semaphore(self.workers)
        self._ctx = multiprocessing.get_context(self.method)
        if self.method == "forkserver":
            # the forkserver imports torch and the readers once; each worker is a cheap fork of it
            self._ctx.set_forkserver_preload(["torchscope.inspect.checkpoints.isolation"])

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child,), name="torchscope-reader", daemon=True)  # type: ignore[attr-defined]
        process.start()
        child.close()
        return _Worker(process, parent)

    def warm_up(self) -> None:
        """Start one worker ahead of the first open (the forkserver imports torch: seconds)."""
        with self._lock:
            if not self._idle and not self._closed:
                self._idle.append(self._start())

    def _kill(self, worker: _Worker) -> int | None:
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        code: int | None = worker.process.exitcode
        return code

    def call(self, fn: Callable[..., Any], *args: Any, what: str, extra_bytes: int = 0, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker; InspectErrors come back as themselves, failures as UnsafeToRead."""
        budget = self.memory_mb * 1024 * 1024 + extra_bytes
        with self._slots:
            with self._lock:
                if self._closed:
                    raise UnsafeToRead(f"{what}: the server is shutting down")
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = self._start()
            keep = False
            try:
                worker.conn.send((fn, args, kwargs, budget))
                if not worker.conn.poll(self.timeout_s):
                    raise UnsafeToRead(
                        f"this file could not be read safely: {what} took longer than {self.timeout_s:g} s (the limit)",
                        rule="time",
                    )
                reply = worker.conn.recv()
                kind = reply[0]
                if kind == "ok":
                    keep = True
                    return reply[1]
                if kind == "inspect":
                    keep = True
                    cls, message, extra = reply[1], reply[2], reply[3]
                    raise cls(message, **extra)
                if kind == "memory":
                    raise UnsafeToRead(
                        f"this file could not be read safely: {what} needed more than its {self.memory_mb} MB memory budget",
                        rule="memory",
                    )
                keep = True
                raise UnsafeToRead(f"this file could not be read safely: {what} failed ({reply[1]})", rule="crash")
            except (EOFError, ConnectionError, OSError):
                code = self._kill(worker)
                worker = None
                how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                raise UnsafeToRead(
                    f"this file could not be read safely: the reader crashed on {what} ({how})", rule="crash"
                ) from None
            finally:
                if worker is not None:
                    if keep:
                        with self._lock:
                            if not self._closed:
                                self._idle.append(worker)
                                worker = None
                    if worker is not None:
                        self._kill(worker)

    def open(self, path: Path, *, cid: str, name: str | None, allow_shards: bool = True) -> Checkpoint:
        """``open_checkpoint`` for an untrusted file, in a worker."""
        try:
            size = path.stat().st_size
        except (OSError, ValueError):
            size = 0  # the worker reports the precise error
        label = name or path.name
        ckpt: Checkpoint = self.call(
            open_untrusted, str(path), cid, name, allow_shards, what=f"opening {label}", extra_bytes=size
        )
        return ckpt

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            self._kill(worker)


def worker_count_alive(isolation: Isolation) -> int:
    """Idle workers still running (tests check that crashes do not leak processes)."""
    return sum(1 for w in isolation._idle if w.process.is_alive())


__all__ = ["Isolation", "UnsafeToRead", "open_untrusted"]
