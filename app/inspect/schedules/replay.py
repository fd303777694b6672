"""The exact replay of a whole scheduler spec, compositions included (see the package docstring)."""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

from torchscope.inspect import safe_expr
from torchscope.inspect.schedules.catalogue import MULTIPLICATIVE, REPLAY_LEAVES
from torchscope.inspect.schedules.replay_leaves import (
    POW_OVERFLOW,
    NotReplayable,
    Replayed,
    factors,
    leaf,
)
from torchscope.inspect.schedules.requests import SchedulerSpec
from torchscope.inspect.schedules.stepping import crash_text as lambda_crash

__all__ = ["NotReplayable", "Replayed", "closed_form", "replay"]


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class _Crash(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _value_at_milestone(spec: SchedulerSpec, base: np.ndarray, current: np.ndarray) -> np.ndarray:
    """What ``SequentialLR`` sets when it hands over: ``_update_lr(0)`` (torch's closed form at 0)."""
    a, t = spec.args, spec.type
    if t == "StepLR":
        return _arr(base * a.get("gamma", 0.1) ** (0 // a["step_size"]))
    if t == "MultiStepLR":
        n_before = bisect_right(sorted(a["milestones"]), 0)
        try:
            return _arr(base * a.get("gamma", 0.1) ** n_before)
        except OverflowError:
            raise _Crash(POW_OVERFLOW) from None
    if t == "ConstantLR":
        f, total = a.get("factor", 1.0 / 3), a.get("total_iters", 5)
        return _arr(base * (f + (total <= 0) * (1 - f)))
    if t == "LinearLR":
        sf, ef, total = a.get("start_factor", 1.0 / 3), a.get("end_factor", 1.0), a.get("total_iters", 5)
        return _arr(base * (sf + (ef - sf) * min(total, 0) / total))
    if t == "ExponentialLR":
        return _arr(base * a["gamma"] ** 0)
    if t == "PolynomialLR":
        total, power = a.get("total_iters", 5), a.get("power", 1.0)
        return _arr(base * (1.0 - min(total, 0) / total) ** power)
    if t == "CosineAnnealingLR":
        m = a.get("eta_min", 0.0)
        return _arr(m + (base - m) * (1 + math.cos(math.pi * 0 / a["T_max"])) / 2)
    if t == "MultiplicativeLR":
        e = a["lr_lambda"]
        try:
            return _arr(np.array([c * safe_expr.evaluate(e, 0) for c in current.tolist()]))
        except safe_expr.SafeExprError as err:
            raise _Crash(lambda_crash(err)) from None
    raise NotReplayable


def replay(spec: SchedulerSpec, base: np.ndarray, n: int) -> Replayed:
    """The numpy replay of ``spec`` on a fresh optimizer whose group lrs are ``base``."""
    if spec.type in REPLAY_LEAVES:
        return leaf(spec, base, None, n)
    if spec.type == "ChainedScheduler":
        return _chained(spec, base, n)
    if spec.type == "SequentialLR":
        return _sequential(spec, base, n)
    raise NotReplayable


def _chained(spec: SchedulerSpec, base: np.ndarray, n: int) -> Replayed:
    kids = spec.children
    if not all(c.type in MULTIPLICATIVE for c in kids):
        raise NotReplayable
    fs = [factors(c, n) for c in kids]
    # Each step every child multiplies in turn: one long cumprod, read every C-th value.
    seq = np.stack([f.r for f in fs]).T.ravel()
    cnum = len(kids)
    with np.errstate(over="ignore", invalid="ignore"):
        lr = np.stack([np.cumprod(np.concatenate(([b], seq)))[cnum::cnum] for b in base.tolist()])
    out = Replayed(lr, None)
    for f in fs:
        out.crashed(f.crash_at, f.crash)
    return out


def _sequential(spec: SchedulerSpec, base: np.ndarray, n: int) -> Replayed:
    kids = spec.children
    safe = MULTIPLICATIVE | {"CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts"}
    if not all(c.type in safe and not c.children for c in kids):
        raise NotReplayable  # CyclicLR/OneCycleLR rewrite initial_lr/momentum when built
    if any(c.type == "MultiplicativeLR" and isinstance(c.args["lr_lambda"], list) for c in kids):
        raise NotReplayable
    ms = list(spec.args["milestones"])
    bounds = [0, *[min(m, n) for m in ms], n]
    out = Replayed(np.empty((base.shape[0], n)), None)
    current = base.copy()
    for j, c in enumerate(kids):
        s, e = bounds[j], bounds[j + 1]
        if e <= s:
            continue
        if j == 0 or c.type in {"LambdaLR", "CosineAnnealingWarmRestarts"}:
            # The first scheduler runs as if fresh; these two are functions of the local step only.
            seg = leaf(c, base, None, e - s)
        else:
            try:
                v0 = _value_at_milestone(c, base, current)
            except _Crash as crash:
                out.lr[:, s:] = np.nan
                return out.crashed(s, crash.text)
            seg = leaf(c, base, v0, e - s)
        out.lr[:, s:e] = seg.lr
        if seg.crash_at is not None:
            return out.crashed(s + seg.crash_at, seg.crash)
        current = seg.lr[:, -1]
    return out


def closed_form(spec: SchedulerSpec, base: np.ndarray, n: int) -> np.ndarray:
    """torch's textbook closed forms (``_get_closed_form_lr``), vectorised; for comparison only."""
    a, t = spec.args, spec.type
    k = np.arange(n, dtype=np.float64)
    b = base[:, None]
    if t == "StepLR":
        return _arr(b * a.get("gamma", 0.1) ** (k // a["step_size"]))
    if t == "MultiStepLR":
        cnt = np.searchsorted(np.array(sorted(a["milestones"])), k, side="right")
        return _arr(b * a.get("gamma", 0.1) ** cnt)
    if t == "ConstantLR":
        f, total = a.get("factor", 1.0 / 3), a.get("total_iters", 5)
        return _arr(b * (f + (k >= total) * (1 - f)))
    if t == "LinearLR":
        sf, ef, total = a.get("start_factor", 1.0 / 3), a.get("end_factor", 1.0), a.get("total_iters", 5)
        return _arr(b * (sf + (ef - sf) * np.minimum(total, k) / total))
    if t == "ExponentialLR":
        return _arr(b * a["gamma"] ** k)
    if t == "PolynomialLR":
        total, power = a.get("total_iters", 5), a.get("power", 1.0)
        return _arr(b * (1.0 - np.minimum(total, k) / total) ** power)
    if t == "CosineAnnealingLR":
        m = a.get("eta_min", 0.0)
        return _arr(m + (b - m) * (1 + np.cos(math.pi * k / a["T_max"])) / 2)
    raise NotReplayable
