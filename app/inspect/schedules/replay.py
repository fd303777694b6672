"""The exact replay: numpy re-enactments of torch's own update rules (see the package docstring)."""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from typing import Any

import numpy as np

from torchscope.inspect import safe_expr
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules.catalogue import MULTIPLICATIVE, REPLAY_LEAVES
from torchscope.inspect.schedules.requests import SchedulerSpec

_COS_CHECKED: list[bool] = []


def _cos(x: np.ndarray) -> np.ndarray:
    """``math.cos`` elementwise, bit for bit: np.cos when it agrees with libm on this machine."""
    if not _COS_CHECKED:
        probe = np.linspace(0.0, 400.0, 4099)
        _COS_CHECKED.append(bool(np.array_equal(np.cos(probe), np.array([math.cos(v) for v in probe]))))
    if _COS_CHECKED[0]:
        return np.asarray(np.cos(x), dtype=np.float64)
    return np.fromiter(map(math.cos, x.tolist()), dtype=np.float64, count=x.size)


def _factors(spec: SchedulerSpec, n: int) -> np.ndarray:
    """Multiplicative factor torch applies to the current lr at step k = 0..n-1 (shared by all groups)."""
    a, t = spec.args, spec.type
    k = np.arange(n, dtype=np.int64)
    r = np.ones(n, dtype=np.float64)
    if t == "StepLR":
        s, gamma = a["step_size"], a.get("gamma", 0.1)
        r[(k > 0) & (k % s == 0)] = gamma
    elif t == "MultiStepLR":
        gamma = a.get("gamma", 0.1)
        for m in a["milestones"]:
            if m < n:
                r[m] = gamma**1  # torch: gamma ** milestones[epoch] (counts are 1: milestones increase)
    elif t == "ConstantLR":
        f, total = a.get("factor", 1.0 / 3), a.get("total_iters", 5)
        if total < n and total != 0:
            r[total] = 1.0 / f
        r[0] = f
    elif t == "LinearLR":
        sf, ef, total = a.get("start_factor", 1.0 / 3), a.get("end_factor", 1.0), a.get("total_iters", 5)
        r[0] = sf
        m = min(total, n - 1)
        if m >= 1:
            kk = k[1 : m + 1]
            r[1 : m + 1] = 1.0 + (ef - sf) / (total * sf + (kk - 1) * (ef - sf))
    elif t == "ExponentialLR":
        r[1:] = a["gamma"]
    elif t == "PolynomialLR":
        total, power = a.get("total_iters", 5), a.get("power", 1.0)
        m = min(total, n - 1)
        if m >= 1:
            kk = k[1 : m + 1]
            base = (1.0 - kk / total) / (1.0 - (kk - 1) / total)
            # Python's float ** (libm pow), not np.power, which may differ in the last bit.
            r[1 : m + 1] = base if power == 1.0 else np.fromiter((b**power for b in base.tolist()), np.float64, m)
    elif t == "MultiplicativeLR":
        exprs = a["lr_lambda"]
        if isinstance(exprs, list):
            raise NotReplayable  # per-group factors: the shared-factor trick does not apply
        if n > 1:
            r[1:] = safe_expr.evaluate_array(exprs, k[1:].astype(np.float64))
    else:  # pragma: no cover - guarded by callers
        raise NotReplayable
    return r


class NotReplayable(Exception):
    """The numpy replay does not cover this spec: step torch instead."""


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _value_at_milestone(spec: SchedulerSpec, base: np.ndarray, current: np.ndarray) -> np.ndarray:
    """What ``SequentialLR`` sets when it hands over: ``_update_lr(0)`` (torch's closed form at 0)."""
    a, t = spec.args, spec.type
    if t == "StepLR":
        return _arr(base * a.get("gamma", 0.1) ** (0 // a["step_size"]))
    if t == "MultiStepLR":
        return _arr(base * a.get("gamma", 0.1) ** bisect_right(sorted(a["milestones"]), 0))
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
        return _arr(np.array([c * safe_expr.evaluate(e, 0) for c in current.tolist()]))
    raise NotReplayable


def _leaf(spec: SchedulerSpec, base: np.ndarray, v0: np.ndarray | None, n: int,
          momentum: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int | None, str | None]:
    """Values for local steps 0..n-1 of one scheduler. ``v0``: value at local step 0 when it is
    handed over mid-way (SequentialLR), else None for a freshly constructed scheduler on ``base``.
    Returns (lr, momentum or None if unchanged, crash step or None, crash message)."""
    g = base.shape[0]
    t, a = spec.type, spec.args
    if t in MULTIPLICATIVE:
        r = _factors(spec, n)
        start = base.copy() if v0 is None else v0
        if v0 is not None:
            r = r.copy()
            r[0] = 1.0
        lr = np.empty((g, n))
        for i in range(g):
            # cumprod performs torch's sequence of multiplications, rounding after each one.
            lr[i] = np.cumprod(np.concatenate(([start[i]], r)))[1:]
        return lr, None, None, None
    k = np.arange(n, dtype=np.int64)
    if t == "CosineAnnealingLR":
        return _cosine(spec, base, base.copy() if v0 is None else v0, n), None, None, None
    if t == "LambdaLR":
        e = a["lr_lambda"]
        exprs = e if isinstance(e, list) else [e] * g
        kf = k.astype(np.float64)
        return np.stack([base[i] * safe_expr.evaluate_array(exprs[i], kf) for i in range(g)]), None, None, None
    if t == "CosineAnnealingWarmRestarts":
        t0, tm, m = a["T_0"], a.get("T_mult", 1), a.get("eta_min", 0.0)
        if tm == 1:
            t_cur, t_i = k % t0, np.full(n, t0, dtype=np.int64)
        else:
            t_cur, t_i = np.empty(n, np.int64), np.empty(n, np.int64)
            pos, length = 0, t0
            while pos < n:
                end = min(n, pos + length)
                t_cur[pos:end] = np.arange(end - pos)
                t_i[pos:end] = length
                pos, length = end, length * tm
        cosv = 1 + _cos(math.pi * t_cur / t_i)
        return np.stack([m + (base[i] - m) * cosv / 2 for i in range(g)]), None, None, None
    if t == "CyclicLR":
        return _cyclic(spec, g, n)
    if t == "OneCycleLR":
        return _one_cycle(spec, g, n)
    raise NotReplayable


def _cosine(spec: SchedulerSpec, base: np.ndarray, v0: np.ndarray, n: int) -> np.ndarray:
    tmax, m = spec.args["T_max"], spec.args.get("eta_min", 0.0)
    g = base.shape[0]
    lr = np.empty((g, n))
    lr[:, 0] = v0
    if n == 1:
        return lr
    j = np.arange(n, dtype=np.int64)
    c = 1 + _cos(math.pi * j / tmax)  # 1 + cos(pi * k / T_max), k = 0..n-1
    ratio = np.empty(n)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 only at restart points, which add instead
        ratio[1:] = c[1:] / c[:-1]
    restart = ((j - 1 - tmax) % (2 * tmax) == 0) & (j >= 1)
    add = (base - m) * (1 - math.cos(math.pi / tmax)) / 2
    idx = np.flatnonzero(restart).tolist()
    if m == 0.0 and len(idx) * 64 < n:
        # eta_min = 0: (lr - 0) * ratio + 0 == lr * ratio exactly, so runs between the
        # restart points (where torch adds instead of multiplying) are cumulative products.
        bounds = [1, *idx, n]
        for i in range(g):
            prev = lr[i, 0]
            for s, e in itertools.pairwise(bounds):
                if s >= n:
                    break
                if restart[s]:
                    lr[i, s] = prev + add[i]
                    prev = lr[i, s]
                    s += 1
                if s < e:
                    seg = np.cumprod(np.concatenate(([prev], ratio[s:e])))[1:]
                    lr[i, s:e] = seg
                    prev = seg[-1]
        return lr
    # General eta_min: an affine recursion, replayed as plain Python float arithmetic.
    # (~9 ms per 100k steps; the one replay slower than numpy.)
    rat = ratio.tolist()
    bounds = [1, *idx, n]
    for i in range(g):
        v, ad = float(v0[i]), float(add[i])
        row = [v]
        push = row.append
        for s, e in itertools.pairwise(bounds):
            if s < n and restart[s]:
                v = v + ad
                push(v)
                s += 1
            for r in rat[s:e]:
                v = r * (v - m) + m
                push(v)
        lr[i] = row
    return lr


def _per_group(v: Any, g: int) -> np.ndarray:
    return np.array(v if isinstance(v, list) else [v] * g, dtype=np.float64)


def _cyclic(spec: SchedulerSpec, g: int, n: int) -> tuple[np.ndarray, np.ndarray | None, None, None]:
    a = spec.args
    base_lr, max_lr = _per_group(a["base_lr"], g), _per_group(a["max_lr"], g)
    up = float(a.get("step_size_up", 2000))
    down = float(a["step_size_down"]) if a.get("step_size_down") is not None else up
    total = up + down
    ratio = up / total
    mode = a.get("mode", "triangular")
    k = np.arange(n, dtype=np.int64)
    cycle = np.floor(1 + k / total)
    x = 1.0 + k / total - cycle
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
    if mode == "triangular":
        scale = np.ones(n)
    elif mode == "triangular2":
        scale = 1 / (2.0 ** (cycle - 1))
    else:  # exp_range scales by iterations
        gamma = a.get("gamma", 1.0)
        scale = np.fromiter((gamma**q for q in range(n)), np.float64, n)
    lr = np.stack([base_lr[i] + (max_lr[i] - base_lr[i]) * sf * scale for i in range(g)])
    mom = None
    if a.get("cycle_momentum", True):
        bm, mm = _per_group(a.get("base_momentum", 0.8), g), _per_group(a.get("max_momentum", 0.9), g)
        mom = np.stack([mm[i] - (mm[i] - bm[i]) * sf * scale for i in range(g)])
    return lr, mom, None, None


def _one_cycle(spec: SchedulerSpec, g: int, n: int) -> tuple[np.ndarray, np.ndarray | None, int | None, str | None]:
    a = spec.args
    total = a.get("total_steps")
    if total is None:  # as _torch_kwargs: epochs * steps_per_epoch, else this preview's length
        total = a["epochs"] * a["steps_per_epoch"] if a.get("epochs") and a.get("steps_per_epoch") else n
    pct_start = float(a.get("pct_start", 0.3))
    div, fdiv = a.get("div_factor", 25.0), a.get("final_div_factor", 1e4)
    max_lr = _per_group(a["max_lr"], g)
    initial = max_lr / div
    min_lr = initial / fdiv
    mx, bm = _per_group(a.get("max_momentum", 0.95), g), _per_group(a.get("base_momentum", 0.85), g)
    vals = {"initial_lr": initial, "max_lr": max_lr, "min_lr": min_lr, "max_momentum": mx, "base_momentum": bm}
    if a.get("three_phase", False):
        phases = [
            (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (float(2 * pct_start * total) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
            (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
        ]
    else:
        phases = [
            (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]
    # torch raises in the step that would reach last_epoch = total_steps + 1; the loop's final
    # scheduler.step() (after the last optimizer step) counts too, so n >= total + 1 crashes.
    crash_at = total + 1 if n >= total + 1 else None
    m = n if crash_at is None else min(n, crash_at)
    k = np.arange(m, dtype=np.float64)
    lr = np.full((g, n), np.nan)
    mom = np.full((g, n), np.nan)
    cos = a.get("anneal_strategy", "cos") == "cos"
    done = np.zeros(m, dtype=bool)
    start = 0.0
    for i, (end, s_lr, e_lr, s_m, e_m) in enumerate(phases):
        sel = ~done & ((k <= end) | (i == len(phases) - 1))
        if sel.any():
            if end - start == 0:
                raise InvalidRequest(
                    f"{spec.field}: OneCycleLR phase {i + 1} has zero length (pct_start * total_steps too small); "
                    "torch divides by zero", field=f"{spec.field}.args.pct_start", reason="zero-length phase",
                )
            pct = (k[sel] - start) / (end - start)
            cos_out = _cos(math.pi * pct) + 1 if cos else None
            for q in range(g):
                for arr, sk, ek in ((lr, s_lr, e_lr), (mom, s_m, e_m)):
                    sv, ev = vals[sk][q], vals[ek][q]
                    arr[q, :m][sel] = ev + (sv - ev) / 2.0 * cos_out if cos_out is not None else (ev - sv) * pct + sv
        done |= sel
        start = end
    msg = None
    if crash_at is not None:
        msg = f"ValueError: Tried to step {crash_at} times. The specified number of total steps is {total}"
    return lr, (mom if a.get("cycle_momentum", True) else None), crash_at, msg


def replay(spec: SchedulerSpec, base: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None, int | None, str | None]:
    """The numpy replay of ``spec`` on a fresh optimizer whose group lrs are ``base``."""
    if spec.type in REPLAY_LEAVES:
        return _leaf(spec, base, None, n, None)
    if spec.type == "ChainedScheduler":
        kids = spec.children
        if not all(c.type in MULTIPLICATIVE for c in kids):
            raise NotReplayable
        f = np.stack([_factors(c, n) for c in kids])  # (C, n)
        # Each step every child multiplies in turn: one long cumprod, read every C-th value.
        seq = f.T.ravel()
        cnum = len(kids)
        lr = np.stack([np.cumprod(np.concatenate(([b], seq)))[cnum::cnum] for b in base.tolist()])
        return lr, None, None, None
    if spec.type == "SequentialLR":
        kids = spec.children
        safe = MULTIPLICATIVE | {"CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts"}
        if not all(c.type in safe and not c.children for c in kids):
            raise NotReplayable  # CyclicLR/OneCycleLR rewrite initial_lr/momentum when built
        if any(c.type == "MultiplicativeLR" and isinstance(c.args["lr_lambda"], list) for c in kids):
            raise NotReplayable
        ms = list(spec.args["milestones"])
        bounds = [0, *[min(m, n) for m in ms], n]
        lr = np.empty((base.shape[0], n))
        current = base.copy()
        for j, c in enumerate(kids):
            s, e = bounds[j], bounds[j + 1]
            if e <= s:
                continue
            if j == 0 or c.type in {"LambdaLR", "CosineAnnealingWarmRestarts"}:
                # The first scheduler runs as if fresh; these two are functions of the local step only.
                seg = _leaf(c, base, None, e - s, None)[0]
            else:
                seg = _leaf(c, base, _value_at_milestone(c, base, current), e - s, None)[0]
            lr[:, s:e] = seg
            current = seg[:, -1]
        return lr, None, None, None
    raise NotReplayable


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
