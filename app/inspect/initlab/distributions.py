"""The distribution an init function draws from, and expected counts and densities per bin (the overlay)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def _fan(tensor: torch.Tensor) -> tuple[int, int]:
    # Same arithmetic as torch.nn.init._calculate_fan_in_and_fan_out (tested against it).
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def theory(fn: str, args: dict[str, Any], tensor: torch.Tensor) -> dict[str, Any] | None:
    """The distribution ``fn`` draws each element from, when there is a simple one."""
    if fn == "uniform_":
        return {"kind": "uniform", "low": args["a"], "high": args["b"]}
    if fn == "normal_":
        return {"kind": "normal", "mean": args["mean"], "std": args["std"]}
    if fn == "trunc_normal_":
        return {
            "kind": "trunc_normal",
            "mean": args["mean"],
            "std": args["std"],
            "low": args["a"],
            "high": args["b"],
        }
    if fn in ("constant_", "ones_", "zeros_"):
        value = {"ones_": 1.0, "zeros_": 0.0}.get(fn, args.get("val"))
        return {"kind": "constant", "value": value}
    if fn.startswith(("xavier_", "kaiming_")):
        fan_in, fan_out = _fan(tensor)
        if fn.startswith("xavier_"):
            std = args["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
        else:
            gain = nn.init.calculate_gain(args["nonlinearity"], args["a"])
            fan = fan_in if args["mode"] == "fan_in" else fan_out
            std = float(gain) / math.sqrt(fan)
        if fn.endswith("uniform_"):
            bound = math.sqrt(3.0) * std
            return {"kind": "uniform", "low": -bound, "high": bound, "std": std}
        return {"kind": "normal", "mean": 0.0, "std": std}
    return None


def _cdf(t: dict[str, Any], x: float) -> float:
    """P(X < x): bins are [e_i, e_i+1), so a point mass on an edge belongs to the bin above it."""
    kind = t["kind"]
    if kind == "uniform":
        lo, hi = t["low"], t["high"]
        if hi <= lo:
            return 0.0 if x <= lo else 1.0
        return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))
    if kind in ("normal", "trunc_normal"):
        mean, std = t["mean"], t["std"]

        def phi(v: float) -> float:
            if std == 0:
                return 0.0 if v <= mean else 1.0
            return 0.5 * (1.0 + math.erf((v - mean) / (std * math.sqrt(2.0))))

        if kind == "normal":
            return float(phi(x))
        lo, hi = phi(t["low"]), phi(t["high"])
        if hi <= lo:
            return 0.0 if x <= t["low"] else 1.0
        return min(1.0, max(0.0, (phi(x) - lo) / (hi - lo)))
    return 0.0 if x <= t["value"] else 1.0  # constant


def expected_counts(t: dict[str, Any], edges: Sequence[float], n: int) -> list[float]:
    """Expected count per bin under ``t`` (the overlay): n * (CDF(e_i+1) - CDF(e_i))."""
    cdf = [_cdf(t, e) for e in edges]
    if t["kind"] == "constant" and edges and t["value"] == edges[-1]:
        cdf[-1] = 1.0  # numpy's last bin is closed: a point mass on the last edge lands in it
    return [n * (cdf[i + 1] - cdf[i]) for i in range(len(edges) - 1)]


def density(counts: Sequence[float], edges: Sequence[float], total: float | None = None) -> list[float]:
    """Counts per unit of value, normalised to integrate to 1 (``np.histogram(density=True)``)."""
    n = sum(counts) if total is None else total
    return [c / (n * (hi - lo)) if n and hi > lo else 0.0 for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True)]
