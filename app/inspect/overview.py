"""The Weights overview at any size: per-tensor statistics as columns, grouped into buckets on demand.

Contract (the ``/overview`` and ``/tensors`` endpoints and the Weights page):

* ``tensor_table(module)`` reads every distinct parameter and buffer once, in
  depth order (``histograms.named_tensors``), with the statistics of its finite
  values defined as in ``histograms.TensorStats`` (``t.float()`` values, sums in
  float64, Bessel-corrected std, NaN/Inf counted apart). The table is plain
  numpy columns, so aggregating 50,000 tensors takes milliseconds; the router
  memoises it until the weights change.
* ``overview(table, start, stop, max_points)`` answers the tensors
  ``[start, stop)`` in at most ``max_points`` buckets of consecutive tensors.
  When the range holds more tensors than that, a bucket is a module subtree (the
  deepest module depth that gives few enough groups, so GPT-2's 148 tensors at
  40 points are its blocks ``h.0`` ... ``h.11``), or, when even the shallowest
  depth gives too many (a 20,000-module ``Sequential``), a run of consecutive
  subtrees. Parameters and buffers are summarised apart in every bucket (a
  BatchNorm's running stats never blur its conv weights); a bucket's mean, std,
  min, max are those of the union of its tensors' finite values.
* ``ticks``: at most ``max_labels`` axis labels, one per module group at the
  deepest depth that fits, so labels are drawn only where they fit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect import histograms as H
from torchscope.inspect.live import content_stamp
from torchscope.inspect.registry import VALUES, LoadedModel

DEFAULT_POINTS = 400
MAX_POINTS = 2000
DEFAULT_LABELS = 24
MAX_LABELS = 200
SEARCH_LIMIT = 50
# Tensors up to this many elements are summarised together, as segments of one
# concatenated vector (one torch call per statistic instead of one per tensor:
# what makes 20,000 LayerNorm-sized tensors cheap); bigger ones take the
# chunked, threaded path of histograms.histograms.
_SMALL = 1 << 15


@dataclass(frozen=True)
class TensorTable:
    """Every distinct tensor of a model, in depth order, with its statistics as numpy columns."""

    names: tuple[str, ...]
    aliases: tuple[tuple[str, ...], ...]
    kinds: tuple[str, ...]  # "parameter" | "buffer"
    modules: tuple[str, ...]
    module_types: tuple[str, ...]
    shapes: tuple[tuple[int, ...] | None, ...]  # None: uninitialized lazy
    dtypes: tuple[str, ...]
    notes: tuple[str | None, ...]  # why a tensor is not summarised
    numel: np.ndarray  # int64
    summarised: np.ndarray  # bool: has finite statistics (values, real)
    buffer: np.ndarray  # bool
    n: np.ndarray  # int64, finite values
    s1: np.ndarray  # float64: sum x
    s2: np.ndarray  # sum x^2
    sa: np.ndarray  # sum |x|
    mn: np.ndarray  # float64, NaN when no finite value
    mx: np.ndarray
    zeros: np.ndarray  # int64
    nan: np.ndarray
    inf: np.ndarray
    std: np.ndarray  # per tensor, NaN when undefined

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, name: str) -> int | None:
        """Position of a tensor by any of its names."""
        lookup = self._lookup()
        return lookup.get(name)

    def _lookup(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_lookup_cache")
        if cached is None:
            cached = {}
            for i, (name, aliases) in enumerate(zip(self.names, self.aliases, strict=True)):
                cached.setdefault(name, i)
                for a in aliases:
                    cached.setdefault(a, i)
            object.__setattr__(self, "_lookup_cache", cached)
        return cached


def _note(tensor: torch.Tensor) -> str | None:
    if isinstance(tensor, UninitializedTensorMixin):
        return "uninitialized lazy tensor: no values until the first forward pass"
    if tensor.is_meta:
        return "meta tensor: shape and dtype only, no values"
    if tensor.is_complex():
        return "complex tensor: not summarised"
    return None


def _empty_columns(k: int) -> dict[str, np.ndarray]:
    return {
        "n": np.zeros(k, np.int64), "s1": np.zeros(k), "s2": np.zeros(k), "sa": np.zeros(k),
        "mn": np.full(k, np.nan), "mx": np.full(k, np.nan),
        "zeros": np.zeros(k, np.int64), "nan": np.zeros(k, np.int64), "inf": np.zeros(k, np.int64),
    }  # fmt: skip


def _small_stats(tensors: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    """Sums, extremes and counts of many small tensors, one vectorised pass per statistic."""
    k = len(tensors)
    out = _empty_columns(k)
    if not k:
        return out
    # One concatenation per (dtype, device): torch.cat needs one of each.
    groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(i)
    for idx in groups.values():
        flat = [tensors[i].detach().reshape(-1) for i in idx]
        sizes = torch.tensor([f.numel() for f in flat], dtype=torch.int64)
        # Read as t.float() like every other statistic, then accumulate in float64.
        x32 = torch.cat(flat).float().cpu()
        seg = torch.repeat_interleave(torch.arange(len(idx)), sizes)
        finite = torch.isfinite(x32)
        x = torch.where(finite, x32, 0.0).double()

        def seg_sum(v: torch.Tensor, seg: torch.Tensor = seg, k: int = len(idx)) -> np.ndarray:
            acc = torch.zeros(k, dtype=v.dtype).index_add_(0, seg, v)
            return acc.numpy()

        pos_inf = torch.tensor(math.inf, dtype=torch.float64)
        lo = torch.full((len(idx),), math.inf, dtype=torch.float64).scatter_reduce_(
            0, seg, torch.where(finite, x, pos_inf), "amin"
        )
        hi = torch.full((len(idx),), -math.inf, dtype=torch.float64).scatter_reduce_(
            0, seg, torch.where(finite, x, -pos_inf), "amax"
        )
        n = seg_sum(finite.long())
        rows = np.asarray(idx)
        out["n"][rows] = n
        out["s1"][rows] = seg_sum(x)
        out["s2"][rows] = seg_sum(x * x)
        out["sa"][rows] = seg_sum(x.abs())
        out["zeros"][rows] = n - seg_sum((x != 0).long())
        out["nan"][rows] = seg_sum(torch.isnan(x32).long())
        out["inf"][rows] = seg_sum(torch.isinf(x32).long())
        lo_np, hi_np = lo.numpy(), hi.numpy()
        out["mn"][rows] = np.where(n > 0, lo_np, np.nan)
        out["mx"][rows] = np.where(n > 0, hi_np, np.nan)
    return out


def _std(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, mn: np.ndarray, mx: np.ndarray) -> np.ndarray:
    """Bessel-corrected std from sums, as histograms.stats.finish_stats computes it (0 for constants)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        nf = n.astype(np.float64)
        var = np.maximum(0.0, (s2 - s1 * s1 / nf) / (nf - 1))
        var = np.where(mn == mx, 0.0, var)
        return np.where(n > 1, np.sqrt(var), np.nan)


def tensor_table(module: nn.Module) -> TensorTable:
    """Read every distinct parameter and buffer once; never changes the model."""
    rows = H.named_tensors(module)
    types = {name: type(m).__name__ for name, m in module.named_modules(remove_duplicate=False)}
    notes = [_note(r.tensor) for r in rows]
    k = len(rows)
    cols = _empty_columns(k)
    readable = [i for i in range(k) if notes[i] is None]
    small = [i for i in readable if rows[i].tensor.numel() <= _SMALL]
    large = [i for i in readable if rows[i].tensor.numel() > _SMALL]
    with torch.no_grad():
        part = _small_stats([rows[i].tensor for i in small])
        for key, values in part.items():
            cols[key][small] = values
        hists = H.histograms(((rows[i].name, rows[i].tensor) for i in large), 1, stats=True)
    for i, h in zip(large, hists, strict=True):
        s = h.stats
        n = h.numel - s.nan - s.inf
        cols["n"][i], cols["nan"][i], cols["inf"][i], cols["zeros"][i] = n, s.nan, s.inf, s.zeros
        if n:
            cols["s1"][i] = (s.mean or 0.0) * n
            cols["s2"][i] = (s.l2 or 0.0) ** 2
            cols["sa"][i] = (s.mean_abs or 0.0) * n
            cols["mn"][i], cols["mx"][i] = s.min, s.max
    summarised = np.zeros(k, bool)
    summarised[readable] = True
    numel = np.array(
        [0 if isinstance(r.tensor, UninitializedTensorMixin) else r.tensor.numel() for r in rows], np.int64
    )
    return TensorTable(
        names=tuple(r.name for r in rows),
        aliases=tuple(r.aliases for r in rows),
        kinds=tuple(r.kind for r in rows),
        modules=tuple(r.module for r in rows),
        module_types=tuple(types.get(r.module, "") for r in rows),
        shapes=tuple(None if isinstance(r.tensor, UninitializedTensorMixin) else tuple(r.tensor.shape) for r in rows),
        dtypes=tuple(str(r.tensor.dtype).removeprefix("torch.") for r in rows),
        notes=tuple(notes),
        numel=numel,
        summarised=summarised,
        buffer=np.array([r.kind == "buffer" for r in rows], bool),
        std=_std(cols["n"], cols["s1"], cols["s2"], cols["mn"], cols["mx"]),
        **cols,
    )


# ------------------------------------------------------------------ served models


def model_lookup(loaded: LoadedModel) -> dict[str, tuple[str, torch.Tensor]]:
    """Every name and alias -> (first name, tensor), once per structure version (call under lock)."""

    def build() -> dict[str, tuple[str, torch.Tensor]]:
        out: dict[str, tuple[str, torch.Tensor]] = {}
        for r in H.named_tensors(loaded.module):
            for n in (r.name, *r.aliases):
                out.setdefault(n, (r.name, r.tensor))
        return out

    return loaded.memo("tensor_lookup", build)


def model_table(loaded: LoadedModel) -> TensorTable:
    """Statistics of every tensor, once until the weights change (call under lock)."""
    stamp = None
    if loaded.watch is not None:  # a live model: reuse only while no tensor's values changed
        distinct = list({id(t): t for _, t in model_lookup(loaded).values()}.values())
        # Norms only: the table's per-tensor statistics move with them (one fused pass).
        stamp = lambda: content_stamp(distinct, bits=False)  # noqa: E731
    return loaded.memo(VALUES + "table", lambda: tensor_table(loaded.module), stamp)


# ------------------------------------------------------------------ grouping


def _segments(module: str) -> list[str]:
    return module.split(".") if module else []


@dataclass(frozen=True)
class _Depths:
    """For each pair of neighbours: how many leading module-path segments they share."""

    length: np.ndarray  # segments of each tensor's module path
    shared: np.ndarray  # len T-1


def _depths(table: TensorTable) -> _Depths:
    cached: _Depths | None = table.__dict__.get("_depths_cache")
    if cached is None:
        segs = [_segments(m) for m in table.modules]
        shared = np.zeros(max(0, len(segs) - 1), np.int64)
        for i in range(len(segs) - 1):
            a, b = segs[i], segs[i + 1]
            j, top = 0, min(len(a), len(b))
            while j < top and a[j] == b[j]:
                j += 1
            shared[i] = j
        cached = _Depths(np.array([len(s) for s in segs], np.int64), shared)
        object.__setattr__(table, "_depths_cache", cached)
    return cached


def _group_starts(table: TensorTable, start: int, stop: int, depth: int) -> np.ndarray:
    """Starts of the runs of consecutive tensors whose module paths agree on ``depth`` segments."""
    d = _depths(table)
    la = np.minimum(d.length[start : stop - 1], depth)
    lb = np.minimum(d.length[start + 1 : stop], depth)
    differs = (la != lb) | (d.shared[start : stop - 1] < la)
    return np.concatenate(([start], start + 1 + np.flatnonzero(differs))).astype(np.int64)


def _best_grouping(table: TensorTable, start: int, stop: int, limit: int) -> tuple[np.ndarray, int]:
    """The deepest module depth whose groups fit ``limit`` (depth 0: one group for the range)."""
    d = _depths(table)
    deepest = int(d.length[start:stop].max()) if stop > start else 0
    best, best_depth = np.array([start], np.int64), 0
    for depth in range(1, deepest + 1):
        starts = _group_starts(table, start, stop, depth)
        if len(starts) > limit:
            if best_depth == 0 and len(best) == 1:
                return starts, depth  # even the shallowest split is too fine: caller merges runs
            break
        best, best_depth = starts, depth
    return best, best_depth


def _label(table: TensorTable, start: int, stop: int, depth: int) -> str:
    if stop - start == 1:
        return table.names[start]
    segs = _segments(table.modules[start])[:depth]
    return ".".join(segs) if segs else "(top level)"


def _merge(starts: np.ndarray, limit: int) -> np.ndarray:
    """Every ``ceil(len / limit)``-th start: runs of consecutive groups, at most ``limit``."""
    step = -(-len(starts) // limit)
    return starts[::step]


# ------------------------------------------------------------------ aggregation


def _kind_stats(table: TensorTable, starts: np.ndarray, stop: int, mask: np.ndarray) -> dict[str, list[Any]]:
    """Statistics of the union of the finite values of the masked tensors, per bucket."""
    idx = starts
    sl = slice(int(starts[0]), stop)
    m = mask[sl]
    rel = idx - idx[0]

    def total(col: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.where(m, col[sl], 0), rel)

    def extreme(col: np.ndarray, fn: Any, fill: float) -> np.ndarray:
        values = np.where(m & ~np.isnan(col[sl]), col[sl], fill)
        return np.asarray(fn.reduceat(values, rel))

    count = total(np.ones(len(table), np.int64))
    n = total(table.n)
    s1, s2, sa = total(table.s1), total(table.s2), total(table.sa)
    numel = total(table.numel)
    zeros = total(table.zeros)
    mn = extreme(table.mn, np.minimum, math.inf)
    mx = extreme(table.mx, np.maximum, -math.inf)
    std_lo = extreme(table.std, np.minimum, math.inf)
    std_hi = extreme(table.std, np.maximum, -math.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mn == mx, mn, s1 / n)  # exact for constants, as histograms does
        mean_abs = sa / n
        zero_fraction = zeros / numel
    std = _std(n, s1, s2, mn, mx)
    # A bucket of one tensor shows that tensor's own numbers, bit for bit.
    ends = np.append(idx[1:], stop)
    single = (ends - idx == 1) & m[rel]
    std = np.where(single, table.std[idx], std)

    def col(values: np.ndarray, ok: np.ndarray) -> list[Any]:
        return [float(v) if k and math.isfinite(v) else None for v, k in zip(values.tolist(), ok.tolist(), strict=True)]

    has = n > 0
    return {
        "tensors": count.tolist(),
        "numel": numel.tolist(),
        "mean": col(mean, has),
        "std": col(std, has),
        "min": col(mn, has),
        "max": col(mx, has),
        "mean_abs": col(mean_abs, has),
        "zero_fraction": col(zero_fraction, numel > 0),
        "std_lo": col(std_lo, has),
        "std_hi": col(std_hi, has),
        "nan": total(table.nan).tolist(),
        "inf": total(table.inf).tolist(),
    }


def _ticks(table: TensorTable, start: int, stop: int, max_labels: int) -> dict[str, list[Any]]:
    if stop <= start:
        return {"x": [], "label": []}
    if stop - start <= max_labels:
        return {"x": list(range(start, stop)), "label": list(table.names[start:stop])}
    starts, depth = _best_grouping(table, start, stop, max_labels)
    if len(starts) > max_labels:
        starts = _merge(starts, max_labels)
    if depth == 0:
        return {"x": [start], "label": [_label(table, start, stop, 0)]}
    ends = np.append(starts[1:], stop)
    return {
        "x": starts.tolist(),
        "label": [_label(table, int(a), int(b), depth) for a, b in zip(starts, ends, strict=True)],
    }


def overview(
    table: TensorTable,
    start: int = 0,
    stop: int | None = None,
    max_points: int = DEFAULT_POINTS,
    max_labels: int = DEFAULT_LABELS,
) -> dict[str, Any]:
    """Tensors ``[start, stop)`` in at most ``max_points`` buckets, parameters and buffers apart."""
    total_count = len(table)
    stop = total_count if stop is None else min(max(stop, 0), total_count)
    start = min(max(start, 0), stop)
    out: dict[str, Any] = {
        "total": total_count,
        "start": start,
        "stop": stop,
        "summarised": int(table.summarised.sum()),
        "not_summarised": dict(Counter(n for n in table.notes if n is not None)),
        "default_tensor": default_tensor(table),
        "ticks": _ticks(table, start, stop, max_labels),
    }
    if stop <= start:
        out.update(grouping="none", depth=None, buckets=None)
        return out
    if stop - start <= max_points:
        starts, depth, grouping = np.arange(start, stop, dtype=np.int64), None, "tensor"
    else:
        starts, d = _best_grouping(table, start, stop, max_points)
        depth = d
        grouping = "module"
        if len(starts) > max_points:
            starts, grouping = _merge(starts, max_points), "modules"
        elif len(starts) == 1:  # no module boundary to split at (tensors of one module): equal runs
            step = -(-(stop - start) // max_points)
            starts, depth, grouping = np.arange(start, stop, step, dtype=np.int64), None, "range"
    ends = np.append(starts[1:], stop)
    single = (ends - starts) == 1
    out.update(
        grouping=grouping,
        depth=depth,
        buckets={
            "start": starts.tolist(),
            "stop": ends.tolist(),
            "label": [_bucket_label(table, int(a), int(b), depth) for a, b in zip(starts, ends, strict=True)],
            "name": [table.names[int(a)] if s else None for a, s in zip(starts, single, strict=True)],
            "kind": [table.kinds[int(a)] if s else None for a, s in zip(starts, single, strict=True)],
            "parameters": _kind_stats(table, starts, stop, table.summarised & ~table.buffer),
            "buffers": _kind_stats(table, starts, stop, table.summarised & table.buffer),
        },
    )
    return out


def _bucket_label(table: TensorTable, start: int, stop: int, depth: int | None) -> str:
    if stop - start == 1:
        return table.names[start]
    if depth is None:
        return f"{table.names[start]} … {table.names[stop - 1]}"
    first = _label(table, start, start + 2, depth) if depth else ""
    last_start = stop - 1
    last = ".".join(_segments(table.modules[last_start])[:depth]) if depth else ""
    if first == last or not last:
        return first
    return f"{first} … {last}"


# ------------------------------------------------------------------ picker


def default_tensor(table: TensorTable) -> str | None:
    """The tensor the Weights page opens on: the first parameter with a spread of values.

    A LayerNorm weight of ones or a fresh BatchNorm buffer says nothing on a
    histogram; fall back to any summarised tensor, then to none.
    """
    varied = table.summarised & (table.mn < table.mx)
    for mask in (varied & ~table.buffer, varied, table.summarised):
        hits = np.flatnonzero(mask)
        if len(hits):
            return table.names[int(hits[0])]
    return None


def tensor_row(table: TensorTable, i: int) -> dict[str, Any]:
    shape = table.shapes[i]
    return {
        "index": i,
        "name": table.names[i],
        "aliases": list(table.aliases[i]),
        "kind": table.kinds[i],
        "module_type": table.module_types[i],
        "shape": list(shape) if shape is not None else None,
        "dtype": table.dtypes[i],
        "numel": int(table.numel[i]),
        "summarised": bool(table.summarised[i]),
        "note": table.notes[i],
    }


def search(table: TensorTable, q: str = "", limit: int = SEARCH_LIMIT, offset: int = 0) -> dict[str, Any]:
    """Tensors whose name, an alias or module class contains every word of ``q`` (any case), in depth order."""
    words = q.lower().split()
    if words:
        hits = [
            i
            for i in range(len(table))
            if all(
                w in table.names[i].lower()
                or w in table.module_types[i].lower()
                or any(w in a.lower() for a in table.aliases[i])
                for w in words
            )
        ]
    else:
        hits = list(range(len(table)))
    page = hits[offset : offset + limit]
    return {"q": q, "total": len(hits), "offset": offset, "limit": limit, "items": [tensor_row(table, i) for i in page]}
