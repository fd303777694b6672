"""The worker threads: one process-wide pool, per-thread scratch buffers, small work run inline."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import torch

T = TypeVar("T")

# Elements per step: the input slice and the float32 scratch (512 KiB each) plus
# the int16/int32 codes fit one core's 2 MiB L2, so after the first read of the
# input the sub / mul / convert / count passes run from cache.
CHUNK = 1 << 17
# Elements per pool task (a task loops over its chunks): few enough futures that
# Python bookkeeping stays small, enough tasks that both cores stay busy.
PART = 8 * CHUNK
# Tensors up to this size are binned in the calling thread (ATen's grain size:
# their kernels never start an OpenMP team).
_INLINE = 1 << 15


class _Scratch(threading.local):
    """Per-thread reusable buffers (a worker handles one chunk at a time)."""

    def __init__(self) -> None:
        self.f32 = torch.empty(CHUNK, dtype=torch.float32)
        self.i16 = torch.empty(CHUNK + 2, dtype=torch.int16)
        self.i32 = torch.empty(CHUNK, dtype=torch.int32)
        self.f64 = torch.empty(CHUNK, dtype=torch.float64)
        self.f64b = torch.empty(CHUNK, dtype=torch.float64)
        # Full-chunk views made once: every Python-level call costs GIL time that the
        # two workers would otherwise queue for.
        self.codes_full = self.i16[:CHUNK]
        self.packed_full = self.codes_full.view(torch.int32)
        self.pairs_full = self.i32[: CHUNK // 2]


scratch = _Scratch()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _worker_init() -> None:
    # Per-thread OpenMP setting: each worker's kernels stay single-threaded, the
    # parallelism comes from the workers (the caller's thread is unaffected).
    # get_num_threads() first: ATen initialises a thread's setting lazily, on its
    # first query, from the process-wide default; doing that now means the later
    # restore of that default (in _get_pool) cannot reach this thread.
    torch.get_num_threads()
    torch.set_num_threads(1)


def _get_pool() -> ThreadPoolExecutor:
    # One process-wide pool, created on first use: it holds no model state, only
    # threads, and sharing it keeps concurrent requests from oversubscribing the cores.
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
            previous = torch.get_num_threads()
            pool = ThreadPoolExecutor(
                workers, thread_name_prefix="torchscope-hist", initializer=_worker_init
            )
            # Start every worker now: each waits at the barrier, so each task gets its own thread.
            barrier = threading.Barrier(workers)
            for fut in [pool.submit(barrier.wait) for _ in range(workers)]:
                fut.result()
            # torch.set_num_threads(1) in the workers also stored 1 as the process-wide
            # default that threads created later start from (ATen's num_threads): put
            # the caller's value back so the rest of the server keeps its parallelism.
            torch.set_num_threads(previous)
            _pool = pool
        return _pool


class _Done(Generic[T]):
    """A result computed right away, with the one method of Future we use (a real
    Future builds a threading.Condition: measurable at hundreds per call)."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


Pending = Future[T] | _Done[T]


def run_or_submit(fn: Callable[..., T], x: torch.Tensor, *args: Any) -> Pending[T]:
    """Small work runs right here: a pool round trip costs more than the work itself.

    Below ATen's grain size the kernels are single-threaded in this thread too, so
    no OpenMP team is started here (see ``batch.histograms``).
    """
    if x.numel() <= _INLINE:
        return _Done(fn(x, *args))
    return _get_pool().submit(fn, x, *args)
