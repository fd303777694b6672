"""The binning kernels: min/max, then the float32 code of every value counted per chunk."""

from __future__ import annotations

import torch

from torchscope.inspect.histograms.pool import CHUNK, scratch

# Pairs of int16 codes are counted as one int32 (see _bin_chunk); that needs
# (bins + 2) ** 2 < 65536.
_PAIR_MAX_BINS = 253


def _bin_chunk(x: torch.Tensor, lo: float, scale: float, bins: int) -> torch.Tensor:
    """Counts of ``code(x)`` for one contiguous float32 chunk, as pairs (see ``fold_pairs``)."""
    n = x.numel()
    s = scratch
    f = s.f32 if n == CHUNK else s.f32[:n]
    torch.sub(x, lo, out=f)
    f.mul_(scale)
    if bins <= _PAIR_MAX_BINS:
        k = bins + 2  # codes 0..bins, plus bins+1 as the padding sentinel
        if n == CHUNK:
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
        # counts; the caller folds them once per tensor (fold_pairs).
        return torch.bincount(pairs, minlength=k * k)
    codes32 = s.i32[:n]
    codes32.copy_(f)
    return torch.bincount(codes32, minlength=bins + 1)[: bins + 1]


def fold_pairs(total: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-code counts (``bins + 1``) from summed ``_bin_chunk`` results."""
    if bins > _PAIR_MAX_BINS:
        return total
    k = bins + 2
    grid = total.view(k, k)  # [hi, lo]
    return (grid.sum(0) + grid.sum(1))[: bins + 1]


def minmax_chunk(x: torch.Tensor) -> tuple[float, float]:
    lo, hi = torch.aminmax(x)  # NaN propagates: a NaN anywhere shows up here
    return float(lo), float(hi)


def bin_part(x: torch.Tensor, lo: float, scale: float, bins: int) -> torch.Tensor:
    total = _bin_chunk(x[:CHUNK], lo, scale, bins).clone()
    for i in range(CHUNK, x.numel(), CHUNK):
        total += _bin_chunk(x[i : i + CHUNK], lo, scale, bins)
    return total
