"""The batch path: many tensors through min/max, sampling, binning and statistics into ``Histogram``s."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from torchscope.inspect.histograms.binning import bin_part, fold_pairs, minmax_chunk
from torchscope.inspect.histograms.edges import code, exact_edges, numpy_edges
from torchscope.inspect.histograms.pool import PART, Pending, run_or_submit
from torchscope.inspect.histograms.records import (
    DEFAULT_BINS,
    DEFAULT_QUANTILES,
    SAMPLE_SEED,
    SAMPLE_SIZE,
    SAMPLE_THRESHOLD,
    Histogram,
    TensorStats,
)
from torchscope.inspect.histograms.stats import finish_stats, stats_part
from torchscope.inspect.histograms.values import check_bins, flat_values

# Tensors whose min/max pass is queued ahead of the current tensor's binning: a
# small window keeps a tensor's bytes in the (shared) L3 between its two passes.
_LOOKAHEAD = 2


@dataclass
class Prepared:
    """One tensor on its way through the batch: its values, the path chosen, its queued work."""

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


def _submit_minmax(x: torch.Tensor) -> list[Pending[tuple[float, float]]]:
    return [run_or_submit(minmax_chunk, x[i : i + PART]) for i in range(0, x.numel(), PART)]


def _prepare(
    name: str, tensor: torch.Tensor, x: torch.Tensor, minmax: list[Pending[tuple[float, float]]]
) -> Prepared:
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
    prepared = Prepared(
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


def _plan_binning(p: Prepared, bins: int) -> None:
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
    top = code(np.array([p.hi], np.float32), np.float32(p.lo), np.float32(scale))[0]
    if top < bins - 1:
        p.mode = "numpy"
        return
    p.scale = float(scale)


def _submit(p: Prepared, bins: int, want_stats: bool) -> None:
    if p.mode == "fast":
        assert p.lo is not None and p.scale is not None
        b = p.binned
        for i in range(0, b.numel(), PART):
            p.bin_futures.append(run_or_submit(bin_part, b[i : i + PART], p.lo, p.scale, bins))
    if want_stats and p.mode != "empty":
        x = p.finite
        for i in range(0, x.numel(), PART):
            p.stat_futures.append(run_or_submit(stats_part, x[i : i + PART]))


def _finish_counts(
    p: Prepared, bins: int, edges_fast: np.ndarray | None
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
        total = fold_pairs(total, bins)
        counts = total.numpy().copy()
        counts[bins - 1] += counts[bins]  # code == bins only for the max: last bin is closed
        return edges_fast, counts[:bins]
    edges = numpy_edges(p.lo, p.hi, bins)
    if p.mode == "constant":
        one = np.histogram(np.array([p.lo], np.float32), bins=edges)[0]
        return edges, one.astype(np.int64) * p.binned.numel()
    return edges, np.histogram(p.binned.numpy(), bins=edges)[0].astype(np.int64)


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
    prepared: list[Prepared] = []
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
                x = flat_values(*items[j])
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
            all_edges = exact_edges(lo, hi, sc, bins)
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
                    stats=finish_stats(p, stats, quantiles),
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
