"""Histograms and summary statistics of a model's parameters and buffers.

Contract (what the API and the pages promise):

* ``counts`` are exact whenever ``sampled`` is false: they equal
  ``numpy.histogram(t.float().numpy(), bins=edges)[0]`` for the returned
  ``edges`` (numpy's rules: bins are ``[e_i, e_i+1)``, the last one is closed
  on the right). NaN and +-Inf are never binned; they are counted in
  ``stats.nan`` / ``stats.inf`` and left out of every other statistic.
* Values are read as ``t.float()`` (float32), whatever the tensor's dtype:
  integer and bool buffers work, float64 is rounded the way numpy would see it.
* Statistics over the finite values: ``mean``, ``std`` (torch's default,
  Bessel-corrected; ``None`` below two values), ``min``, ``max``, ``mean_abs``,
  ``l2`` (``sqrt(sum x^2)``), ``zeros`` (exact zeros, either sign) and
  ``zero_fraction`` (over all elements), accumulated in float64. ``quantiles``
  (numpy's default linear method) are computed only when asked for: they need a
  selection over every value and cost more than the rest together.

Sampling threshold: a tensor with more than ``SAMPLE_THRESHOLD`` elements
(2**27, about 134 M: larger than any single tensor of a 1B-parameter
transformer, smaller than a 7B model's embedding) is binned from a uniform
random sample of ``SAMPLE_SIZE`` (2**24) elements drawn with a fixed seed, so
the same tensor always gives the same answer. Then ``sampled`` is true, the
counts add up to the sample size, and quantiles come from the sample;
``numel``, ``min``/``max`` (hence the edges), the moments, ``zeros``, ``nan``
and ``inf`` are still computed over every element.

How it is made fast (target: all histograms of a 124M-parameter model, exact,
64 bins, <= 150 ms on two cores; ``benchmarks/histograms.py`` measures it next
to TensorBoard's ``add_histogram``):

* one ``aminmax`` pass per tensor, then a binning pass over cache-sized chunks
  spread over a small thread pool (torch releases the GIL in its kernels; each
  worker runs its ops single-threaded so the two cores do not fight);
* the bin of ``x`` is ``code(x) = trunc(fl32(fl32(x - min) * scale))``: two
  IEEE float32 ops, each correctly rounded and monotonic, so ``code`` is
  monotonic in ``x`` and the edge ``e_i`` can be defined as *the smallest
  float32 whose code is >= i*, found by an exact binary search over float32
  values. Computing the edges the way we bin is what makes the counts exact;
  the textbook ``min + i * width`` edges disagree with the binning on values
  within an ulp of an edge;
* codes are written as int16 and read back two at a time as int32, so
  ``bincount`` (the slow, scalar part) does half the increments.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.errors import InvalidRequest, NotFound, NoValues

T = TypeVar("T")

DEFAULT_BINS = 64
MIN_BINS = 1
MAX_BINS = 1024
SAMPLE_THRESHOLD = 1 << 27
SAMPLE_SIZE = 1 << 24
SAMPLE_SEED = 0
DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

# Elements per step: the input slice and the float32 scratch (512 KiB each) plus
# the int16/int32 codes fit one core's 2 MiB L2, so after the first read of the
# input the sub / mul / convert / count passes run from cache.
_CHUNK = 1 << 17
# Elements per pool task (a task loops over its chunks): few enough futures that
# Python bookkeeping stays small, enough tasks that both cores stay busy.
_PART = 8 * _CHUNK
# Tensors up to this size are binned in the calling thread (ATen's grain size:
# their kernels never start an OpenMP team).
_INLINE = 1 << 15
# Tensors whose min/max pass is queued ahead of the current tensor's binning: a
# small window keeps a tensor's bytes in the (shared) L3 between its two passes.
_LOOKAHEAD = 2
# Pairs of int16 codes are counted as one int32 (see _bin_chunk); that needs
# (bins + 2) ** 2 < 65536.
_PAIR_MAX_BINS = 253


@dataclass(frozen=True)
class TensorStats:
    """Summary statistics of one tensor's finite values (see the module docstring)."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    mean_abs: float | None
    l2: float | None
    zeros: int
    zero_fraction: float | None
    nan: int
    inf: int
    quantiles: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "mean_abs": self.mean_abs,
            "l2": self.l2,
            "zeros": self.zeros,
            "zero_fraction": self.zero_fraction,
            "nan": self.nan,
            "inf": self.inf,
            "quantiles": dict(self.quantiles),
        }


@dataclass(frozen=True)
class Histogram:
    """A tensor's histogram (``len(edges) == len(counts) + 1``) and statistics."""

    name: str
    numel: int
    dtype: str
    shape: tuple[int, ...]
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    stats: TensorStats
    sampled: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "numel": self.numel,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "edges": list(self.edges),
            "counts": list(self.counts),
            "stats": self.stats.to_dict(),
            "sampled": self.sampled,
        }


def quantile_key(q: float) -> str:
    """``0.05 -> "p5"``, ``0.5 -> "p50"``, ``0.999 -> "p99.9"``."""
    return "p" + f"{q * 100:.6g}"


def check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int):
        raise InvalidRequest(f"bins must be an integer, got {bins!r}", field="bins")
    if not MIN_BINS <= bins <= MAX_BINS:
        raise InvalidRequest(
            f"bins must be between {MIN_BINS} and {MAX_BINS}, got {bins}", field="bins"
        )
    return bins


def has_values(tensor: torch.Tensor) -> bool:
    """False for meta tensors and uninitialized lazy parameters/buffers."""
    return not (isinstance(tensor, UninitializedTensorMixin) or tensor.is_meta)


def check_values(name: str, tensor: torch.Tensor) -> None:
    if isinstance(tensor, UninitializedTensorMixin):
        raise NoValues(
            f"{name} is an uninitialized lazy tensor: it has no values until the "
            "module's first forward pass",
            tensor=name,
        )
    if tensor.is_meta:
        raise NoValues(
            f"{name} is on the meta device: it has a shape and dtype but no values",
            tensor=name,
        )
    if tensor.is_complex():
        raise InvalidRequest(
            f"{name} is complex ({tensor.dtype}); histograms need real values", tensor=name
        )


# --------------------------------------------------------------------------- binning


class _Scratch(threading.local):
    """Per-thread reusable buffers (a worker handles one chunk at a time)."""

    def __init__(self) -> None:
        self.f32 = torch.empty(_CHUNK, dtype=torch.float32)
        self.i16 = torch.empty(_CHUNK + 2, dtype=torch.int16)
        self.i32 = torch.empty(_CHUNK, dtype=torch.int32)
        self.f64 = torch.empty(_CHUNK, dtype=torch.float64)
        self.f64b = torch.empty(_CHUNK, dtype=torch.float64)
        # Full-chunk views made once: every Python-level call costs GIL time that the
        # two workers would otherwise queue for.
        self.codes_full = self.i16[:_CHUNK]
        self.packed_full = self.codes_full.view(torch.int32)
        self.pairs_full = self.i32[: _CHUNK // 2]


_scratch = _Scratch()
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


def _bin_chunk(x: torch.Tensor, lo: float, scale: float, bins: int) -> torch.Tensor:
    """Counts of ``code(x)`` for one contiguous float32 chunk, as pairs (see ``_fold_pairs``)."""
    n = x.numel()
    s = _scratch
    f = s.f32 if n == _CHUNK else s.f32[:n]
    torch.sub(x, lo, out=f)
    f.mul_(scale)
    if bins <= _PAIR_MAX_BINS:
        k = bins + 2  # codes 0..bins, plus bins+1 as the padding sentinel
        if n == _CHUNK:
            codes, packed, pairs = s.codes_full, s.packed_full, s.pairs_full
            codes.copy_(f)  # float -> int truncates; f >= 0 so that is floor
        else:
            m = n + (n & 1)
            codes = s.i16[:m]
            codes[:n].copy_(f)
            if n & 1:
                codes[n] = bins + 1
            packed = codes.view(torch.int32)
            pairs = s.i32[: m // 2]
        # Two int16 codes read as one int32: packed = lo + 65536 * hi, and
        # packed - (packed >> 16) * (65536 - k) = lo + k * hi, a small index.
        torch.bitwise_right_shift(packed, 16, out=pairs)
        torch.add(packed, pairs, alpha=k - 65536, out=pairs)
        # Every index is < k * k, so the result has exactly k * k entries. Raw pair
        # counts; the caller folds them once per tensor (_fold_pairs).
        return torch.bincount(pairs, minlength=k * k)
    codes32 = s.i32[:n]
    codes32.copy_(f)
    return torch.bincount(codes32, minlength=bins + 1)[: bins + 1]


def _fold_pairs(total: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-code counts (``bins + 1``) from summed ``_bin_chunk`` results."""
    if bins > _PAIR_MAX_BINS:
        return total
    k = bins + 2
    grid = total.view(k, k)  # [hi, lo]
    return (grid.sum(0) + grid.sum(1))[: bins + 1]


def _stats_chunk(x: torch.Tensor) -> tuple[float, float, float, int]:
    """(sum x, sum x^2, sum |x|, nonzeros) of one chunk, accumulated in float64."""
    n = x.numel()
    s = _scratch
    d = s.f64[:n]
    d.copy_(x)
    total = float(d.sum())
    sq = float(torch.dot(d, d))
    sign = s.f64b[:n]
    torch.sign(d, out=sign)
    abs_total = float(torch.dot(d, sign))
    nonzero = int(torch.dot(sign, sign))
    return total, sq, abs_total, nonzero


# ------------------------------------------------------------- exact edges (float32)


def _f32_key(x: np.ndarray) -> np.ndarray:
    """Order-preserving map of float32 values to int64 (``-0.0`` sorts just below ``0.0``)."""
    bits = x.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def _key_f32(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0, key, -(key + 1) | -0x80000000)
    out: np.ndarray = bits.astype(np.int32).view(np.float32)
    return out


def _code(
    x: np.ndarray, lo: np.ndarray | np.floating[Any], scale: np.ndarray | np.floating[Any]
) -> np.ndarray:
    """The same float32 arithmetic as ``_bin_chunk`` (IEEE, so numpy == torch)."""
    f = np.multiply(np.subtract(x, lo, dtype=np.float32), scale, dtype=np.float32)
    out: np.ndarray = np.trunc(f)
    return out


def _exact_edges(lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, bins: int) -> np.ndarray:
    """Edges ``(T, bins + 1)``: ``e_i`` = smallest float32 in [lo, hi] with ``code >= i``.

    One vectorised binary search over float32 values for every edge of every
    tensor at once. Requires ``code(lo) == 0`` (true: ``lo - lo == 0``) and
    ``code(hi) >= bins - 1`` (checked by the caller).
    """
    t = lo.shape[0]
    target = np.arange(1, bins, dtype=np.float32)[None, :]
    lo_b = np.broadcast_to(lo[:, None], (t, bins - 1)).astype(np.float32)
    sc_b = np.broadcast_to(scale[:, None], (t, bins - 1)).astype(np.float32)
    low = np.broadcast_to(_f32_key(lo)[:, None], (t, bins - 1)).copy()  # code < i
    high = np.broadcast_to(_f32_key(hi)[:, None], (t, bins - 1)).copy()  # code >= i
    while True:
        open_ = high - low > 1
        if not open_.any():
            break
        mid = (low + high) // 2
        ok = _code(_key_f32(mid), lo_b, sc_b) >= target
        high = np.where(open_ & ok, mid, high)
        low = np.where(open_ & ~ok, mid, low)
    edges = np.empty((t, bins + 1), dtype=np.float32)
    edges[:, 0] = lo
    edges[:, 1:bins] = _key_f32(high)
    edges[:, bins] = hi
    return edges + np.float32(0.0)  # -0.0 -> 0.0: same comparisons, tidier JSON


# ------------------------------------------------------------------ the batch path


@dataclass
class _Prepared:
    name: str
    numel: int
    dtype: str
    shape: tuple[int, ...]
    finite: torch.Tensor  # flat float32 CPU: the finite values (maybe the tensor itself)
    binned: torch.Tensor  # what gets binned: `finite` or a sample of it
    sampled: bool
    nan: int
    inf: int
    lo: float | None = None
    hi: float | None = None
    scale: float | None = None
    mode: str = "fast"  # fast | constant | numpy | empty
    bin_futures: list[Pending[torch.Tensor]] = field(default_factory=list)
    stat_futures: list[Pending[tuple[float, float, float, int]]] = field(default_factory=list)


def _flat_values(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as flat, contiguous float32 on the CPU (a view when it already is)."""
    check_values(name, tensor)
    t = tensor.detach()
    x = t.float() if t.dtype != torch.float32 else t
    x = x.reshape(-1)
    if x.device.type != "cpu":
        x = x.cpu()
    return x.contiguous()


def _minmax_chunk(x: torch.Tensor) -> tuple[float, float]:
    lo, hi = torch.aminmax(x)  # NaN propagates: a NaN anywhere shows up here
    return float(lo), float(hi)


class _Done(Generic[T]):
    """A result computed right away, with the one method of Future we use (a real
    Future builds a threading.Condition: measurable at hundreds per call)."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


Pending = Future[T] | _Done[T]


def _run_or_submit(fn: Callable[..., T], x: torch.Tensor, *args: Any) -> Pending[T]:
    """Small work runs right here: a pool round trip costs more than the work itself.

    Below ATen's grain size the kernels are single-threaded in this thread too, so
    no OpenMP team is started here (see ``histograms``).
    """
    if x.numel() <= _INLINE:
        return _Done(fn(x, *args))
    return _get_pool().submit(fn, x, *args)


def _submit_minmax(x: torch.Tensor) -> list[Pending[tuple[float, float]]]:
    return [_run_or_submit(_minmax_chunk, x[i : i + _PART]) for i in range(0, x.numel(), _PART)]


def _bin_part(x: torch.Tensor, lo: float, scale: float, bins: int) -> torch.Tensor:
    total = _bin_chunk(x[:_CHUNK], lo, scale, bins).clone()
    for i in range(_CHUNK, x.numel(), _CHUNK):
        total += _bin_chunk(x[i : i + _CHUNK], lo, scale, bins)
    return total


def _stats_part(x: torch.Tensor) -> tuple[float, float, float, int]:
    s1 = s2 = sa = 0.0
    nonzero = 0
    for i in range(0, x.numel(), _CHUNK):
        a, b, c, d = _stats_chunk(x[i : i + _CHUNK])
        s1, s2, sa, nonzero = s1 + a, s2 + b, sa + c, nonzero + d
    return s1, s2, sa, nonzero


def _prepare(
    name: str, tensor: torch.Tensor, x: torch.Tensor, minmax: list[Pending[tuple[float, float]]]
) -> _Prepared:
    nan = inf = 0
    lo = hi = 0.0
    if minmax:
        parts = [f.result() for f in minmax]
        lo, hi = min(a for a, _ in parts), max(b for _, b in parts)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # rare: filter, then look again
            nan = int(torch.isnan(x).sum())
            inf = int(torch.isinf(x).sum())
            x = x[torch.isfinite(x)]
            if x.numel():
                lo_t, hi_t = torch.aminmax(x)
                lo, hi = float(lo_t), float(hi_t)
    prepared = _Prepared(
        name=name,
        numel=tensor.numel(),
        dtype=str(tensor.dtype).removeprefix("torch."),
        shape=tuple(tensor.shape),
        finite=x,
        binned=x,
        sampled=False,
        nan=nan,
        inf=inf,
    )
    if not x.numel():
        prepared.mode = "empty"
        return prepared
    prepared.lo, prepared.hi = lo, hi
    if x.numel() > SAMPLE_THRESHOLD:
        gen = torch.Generator().manual_seed(SAMPLE_SEED)
        idx = torch.randint(x.numel(), (SAMPLE_SIZE,), generator=gen)
        prepared.binned = x[idx]
        prepared.sampled = True
    return prepared


def _plan_binning(p: _Prepared, bins: int) -> None:
    """Pick how ``p`` is binned: the fast exact path, or numpy itself for the odd cases."""
    if p.mode == "empty":
        return
    assert p.lo is not None and p.hi is not None
    if p.lo == p.hi:
        p.mode = "constant"
        return
    with np.errstate(over="ignore", divide="ignore"):
        width = np.float32(p.hi) - np.float32(p.lo)  # float32, like the binning
        scale = np.float32(np.float64(bins) / np.float64(width)) if np.isfinite(width) else np.inf
    if not (np.isfinite(width) and np.isfinite(scale) and scale > 0):
        p.mode = "numpy"  # range overflows float32 or is subnormal-tiny: numpy bins it
        return
    top = _code(np.array([p.hi], np.float32), np.float32(p.lo), np.float32(scale))[0]
    if top < bins - 1:
        p.mode = "numpy"
        return
    p.scale = float(scale)


def _submit(p: _Prepared, bins: int, want_stats: bool) -> None:
    if p.mode == "fast":
        assert p.lo is not None and p.scale is not None
        b = p.binned
        for i in range(0, b.numel(), _PART):
            p.bin_futures.append(_run_or_submit(_bin_part, b[i : i + _PART], p.lo, p.scale, bins))
    if want_stats and p.mode != "empty":
        x = p.finite
        for i in range(0, x.numel(), _PART):
            p.stat_futures.append(_run_or_submit(_stats_part, x[i : i + _PART]))


def _numpy_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    if lo == hi:  # numpy's rule for a constant input
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(np.float64(lo), np.float64(hi), bins + 1).astype(np.float32)
    edges[0], edges[-1] = np.float32(lo), np.float32(hi)
    return np.maximum.accumulate(edges)  # float32 rounding must not break monotonicity


def _finish_counts(
    p: _Prepared, bins: int, edges_fast: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if p.mode == "empty":
        edges = np.linspace(0.0, 1.0, bins + 1).astype(np.float32)
        return edges, np.zeros(bins, dtype=np.int64)
    assert p.lo is not None and p.hi is not None
    if p.mode == "fast":
        assert edges_fast is not None
        total = p.bin_futures[0].result().clone()
        for fut in p.bin_futures[1:]:
            total += fut.result()
        total = _fold_pairs(total, bins)
        counts = total.numpy().copy()
        counts[bins - 1] += counts[bins]  # code == bins only for the max: last bin is closed
        return edges_fast, counts[:bins]
    edges = _numpy_edges(p.lo, p.hi, bins)
    if p.mode == "constant":
        one = np.histogram(np.array([p.lo], np.float32), bins=edges)[0]
        return edges, one.astype(np.int64) * p.binned.numel()
    return edges, np.histogram(p.binned.numpy(), bins=edges)[0].astype(np.int64)


def _finish_stats(p: _Prepared, want_stats: bool, quantiles: Sequence[float]) -> TensorStats:
    n = p.finite.numel()
    zeros_total = 0
    mean = std = mean_abs = l2 = None
    if want_stats and n:
        s1 = s2 = sa = 0.0
        nonzero = 0
        for fut in p.stat_futures:
            a, b, c, d = fut.result()
            s1, s2, sa, nonzero = s1 + a, s2 + b, sa + c, nonzero + d
        mean = s1 / n
        if n > 1:
            var = 0.0 if p.lo == p.hi else max(0.0, (s2 - s1 * s1 / n) / (n - 1))
            std = math.sqrt(var)
        mean_abs = sa / n
        l2 = math.sqrt(s2)
        zeros_total = n - nonzero
        if (
            p.lo is not None and p.lo == p.hi
        ):  # exact for constant tensors, whatever the rounding of sums
            mean, mean_abs = p.lo, abs(p.lo)
    qs: dict[str, float] = {}
    if quantiles and p.binned.numel():
        values = np.quantile(p.binned.numpy(), np.asarray(quantiles, dtype=np.float64))
        qs = {quantile_key(q): float(v) for q, v in zip(quantiles, values, strict=True)}
    return TensorStats(
        mean=mean,
        std=std,
        min=p.lo,
        max=p.hi,
        mean_abs=mean_abs,
        l2=l2,
        zeros=zeros_total,
        zero_fraction=(zeros_total / p.numel) if (want_stats and p.numel) else None,
        nan=p.nan,
        inf=p.inf,
        quantiles=qs,
    )


def histograms(
    named: Iterable[tuple[str, torch.Tensor]],
    bins: int = DEFAULT_BINS,
    *,
    stats: bool = True,
    quantiles: Sequence[float] = (),
) -> list[Histogram]:
    """Histograms of many tensors in one batch: the fast path behind the overview.

    Raises ``NoValues`` for a meta / uninitialized-lazy tensor (filter first with
    ``has_values``). With ``stats=False`` only min/max/nan/inf are filled in.
    """
    check_bins(bins)
    prepared: list[_Prepared] = []
    with torch.no_grad():
        # All kernels run on the worker threads, single-threaded: an OpenMP team
        # started from this thread would keep spinning after its region and steal
        # the cores from the workers. Min/max of every tensor is queued first; a
        # tensor's binning is queued as soon as its min/max is known, so the
        # queue never runs dry.
        items = list(named)
        staged: dict[int, tuple[torch.Tensor, list[Pending[tuple[float, float]]]]] = {}
        ahead = _LOOKAHEAD if _LOOKAHEAD > 0 else len(items)

        def stage(j: int) -> None:
            if j < len(items) and j not in staged:
                x = _flat_values(*items[j])
                staged[j] = (x, _submit_minmax(x))

        for j in range(min(ahead, len(items))):
            stage(j)
        for i, (name, tensor) in enumerate(items):
            stage(i + ahead)  # keep the queue fed while this tensor's min/max finishes
            x, minmax = staged.pop(i)
            p = _prepare(name, tensor, x, minmax)
            _plan_binning(p, bins)
            _submit(p, bins, stats)
            prepared.append(p)
        fast = [p for p in prepared if p.mode == "fast"]
        edges_by_id: dict[int, np.ndarray] = {}
        if fast:
            lo = np.array([p.lo for p in fast], dtype=np.float32)
            hi = np.array([p.hi for p in fast], dtype=np.float32)
            sc = np.array([p.scale for p in fast], dtype=np.float32)
            all_edges = _exact_edges(lo, hi, sc, bins)
            edges_by_id = {id(p): all_edges[i] for i, p in enumerate(fast)}
        out = []
        for p in prepared:
            edges, counts = _finish_counts(p, bins, edges_by_id.get(id(p)))
            out.append(
                Histogram(
                    name=p.name,
                    numel=p.numel,
                    dtype=p.dtype,
                    shape=p.shape,
                    edges=tuple(edges.tolist()),  # float32 -> Python float is exact
                    counts=tuple(counts.tolist()),
                    stats=_finish_stats(p, stats, quantiles),
                    sampled=p.sampled,
                )
            )
    return out


def tensor_histogram(
    name: str, tensor: torch.Tensor, bins: int = DEFAULT_BINS, *, stats: TensorStats | None = None
) -> Histogram:
    """One tensor's exact histogram with every statistic, quantiles included.

    ``stats``: this tensor's statistics from an earlier call (its values unchanged):
    only the bins are computed then. Quantiles select over every value (about 1 s
    for GPT-2's 38M-element embedding) and do not depend on the bins, so a new bin
    count answers in a tenth of that.
    """
    if stats is None:
        return histograms([(name, tensor)], bins, stats=True, quantiles=DEFAULT_QUANTILES)[0]
    return replace(histograms([(name, tensor)], bins, stats=False)[0], stats=stats)


# ------------------------------------------------------------------- model level


@dataclass(frozen=True)
class NamedTensor:
    """A parameter or buffer of a model, by its first name, with its other names."""

    name: str
    kind: str  # "parameter" | "buffer"
    module: str  # owning module's path ("" for the root)
    tensor: torch.Tensor
    aliases: tuple[str, ...] = ()


def named_tensors(module: nn.Module) -> list[NamedTensor]:
    """Every distinct parameter and buffer in depth order (the order of ``named_modules``).

    A tensor reachable under several names (tied weights, a module reused at two
    paths) is listed once, under its first name, with the others as ``aliases``.
    """
    first: dict[int, int] = {}
    rows: list[NamedTensor] = []
    aliases: dict[int, list[str]] = {}
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        prefix = f"{mod_name}." if mod_name else ""
        for kind, items in (
            ("parameter", mod._parameters.items()),
            ("buffer", mod._buffers.items()),
        ):
            for local, tensor in items:
                if tensor is None:
                    continue
                full = prefix + local
                key = id(tensor)
                if key in first:
                    aliases.setdefault(key, []).append(full)
                    continue
                first[key] = len(rows)
                rows.append(NamedTensor(full, kind, mod_name, tensor))
    return [
        NamedTensor(r.name, r.kind, r.module, r.tensor, tuple(aliases.get(id(r.tensor), ())))
        for r in rows
    ]


def find_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """A parameter or buffer by any of its names (aliases of tied weights included)."""
    for row in named_tensors(module):
        if name == row.name or name in row.aliases:
            return row.tensor
    raise NotFound(f"no parameter or buffer named {name!r}", tensor=name)


def model_histograms(
    module: nn.Module, bins: int = DEFAULT_BINS, *, stats: bool = True
) -> list[Histogram]:
    """Histograms of every distinct tensor that has values (the fast all-tensors path)."""
    rows = [r for r in named_tensors(module) if has_values(r.tensor) and not r.tensor.is_complex()]
    return histograms(((r.name, r.tensor) for r in rows), bins, stats=stats)
