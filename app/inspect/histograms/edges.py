"""Bin edges: exact float32 edges found by binary search over the binning's own arithmetic, or numpy's."""

from __future__ import annotations

from typing import Any

import numpy as np


def _f32_key(x: np.ndarray) -> np.ndarray:
    """Order-preserving map of float32 values to int64 (``-0.0`` sorts just below ``0.0``)."""
    bits = x.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def _key_f32(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0, key, -(key + 1) | -0x80000000)
    out: np.ndarray = bits.astype(np.int32).view(np.float32)
    return out


def code(
    x: np.ndarray, lo: np.ndarray | np.floating[Any], scale: np.ndarray | np.floating[Any]
) -> np.ndarray:
    """The same float32 arithmetic as ``binning._bin_chunk`` (IEEE, so numpy == torch)."""
    f = np.multiply(np.subtract(x, lo, dtype=np.float32), scale, dtype=np.float32)
    out: np.ndarray = np.trunc(f)
    return out


def exact_edges(lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, bins: int) -> np.ndarray:
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
        ok = code(_key_f32(mid), lo_b, sc_b) >= target
        high = np.where(open_ & ok, mid, high)
        low = np.where(open_ & ~ok, mid, low)
    edges = np.empty((t, bins + 1), dtype=np.float32)
    edges[:, 0] = lo
    edges[:, 1:bins] = _key_f32(high)
    edges[:, bins] = hi
    return edges + np.float32(0.0)  # -0.0 -> 0.0: same comparisons, tidier JSON


def numpy_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    if lo == hi:  # numpy's rule for a constant input
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(np.float64(lo), np.float64(hi), bins + 1).astype(np.float32)
    edges[0], edges[-1] = np.float32(lo), np.float32(hi)
    return np.maximum.accumulate(edges)  # float32 rounding must not break monotonicity
