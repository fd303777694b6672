"""Statistics of the finite values: float64 sums per chunk, then mean, std, l2, zeros and quantiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from torchscope.inspect.histograms.pool import CHUNK, scratch
from torchscope.inspect.histograms.records import TensorStats, quantile_key

if TYPE_CHECKING:
    from torchscope.inspect.histograms.batch import Prepared


def _stats_chunk(x: torch.Tensor) -> tuple[float, float, float, int]:
    """(sum x, sum x^2, sum |x|, nonzeros) of one chunk, accumulated in float64."""
    n = x.numel()
    s = scratch
    d = s.f64[:n]
    d.copy_(x)
    total = float(d.sum())
    sq = float(torch.dot(d, d))
    sign = s.f64b[:n]
    torch.sign(d, out=sign)
    abs_total = float(torch.dot(d, sign))
    nonzero = int(torch.dot(sign, sign))
    return total, sq, abs_total, nonzero


def stats_part(x: torch.Tensor) -> tuple[float, float, float, int]:
    s1 = s2 = sa = 0.0
    nonzero = 0
    for i in range(0, x.numel(), CHUNK):
        a, b, c, d = _stats_chunk(x[i : i + CHUNK])
        s1, s2, sa, nonzero = s1 + a, s2 + b, sa + c, nonzero + d
    return s1, s2, sa, nonzero


def finish_stats(p: Prepared, want_stats: bool, quantiles: Sequence[float]) -> TensorStats:
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
