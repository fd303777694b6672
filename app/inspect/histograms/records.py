"""The histogram records and their limits: ``Histogram``, ``TensorStats``, bins, sampling, quantiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_BINS = 64
MIN_BINS = 1
MAX_BINS = 1024
SAMPLE_THRESHOLD = 1 << 27
SAMPLE_SIZE = 1 << 24
SAMPLE_SEED = 0
DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class TensorStats:
    """Summary statistics of one tensor's finite values (see the package docstring)."""

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
