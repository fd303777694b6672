"""The exact replay of one (non-composite) scheduler: numpy re-enactments of torch's update rules.

Every leaf answers the same question the same way: the values at local steps ``0..n-1``
and, when torch would raise in ``scheduler.step()`` (an overflow in ``2.0 ** cycle``, a
lambda that divides by zero, OneCycleLR stepped past ``total_steps``), the step at which it
raises and torch's error text. Values from that step on are NaN.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchscope.inspect import exactmath, safe_expr
from torchscope.inspect.schedules.catalogue import MULTIPLICATIVE
from torchscope.inspect.schedules.requests import SchedulerSpec
from torchscope.inspect.schedules.stepping import crash_text as lambda_crash

# Python's message for a float ** that overflows (torch's schedulers raise exactly this).
POW_OVERFLOW = "OverflowError: (34, 'Numerical result out of range')"


class NotReplayable(Exception):
    """The numpy replay does not cover this spec: step torch instead."""


@dataclass
class Replayed:
    """Values after local step k (k = 0: after construction) per group; NaN from ``crash_at`` on."""

    lr: np.ndarray  # (G, n)
    momentum: np.ndarray | None  # (G, n), or None when the scheduler leaves momentum alone
    crash_at: int | None = None
    crash: str | None = None

    def crashed(self, at: int | None, text: str | None) -> Replayed:
        """The earlier of this crash and another one."""
        if at is not None and (self.crash_at is None or at < self.crash_at):
            self.crash_at, self.crash = at, text
        if self.crash_at is not None:
            self.lr[:, self.crash_at :] = np.nan
            if self.momentum is not None:
                self.momentum[:, self.crash_at :] = np.nan
        return self


@dataclass
class Factors:
    """Multiplicative factor torch applies to the current lr at step k = 0..n-1 (shared by all groups)."""

    r: np.ndarray
    crash_at: int | None = None
    crash: str | None = None


def factors(spec: SchedulerSpec, n: int) -> Factors:
    a, t = spec.args, spec.type
    k = np.arange(n, dtype=np.int64)
    r = np.ones(n, dtype=np.float64)
    out = Factors(r)
    if t == "StepLR":
        s, gamma = a["step_size"], a.get("gamma", 0.1)
        r[(k > 0) & (k % s == 0)] = gamma
    elif t == "MultiStepLR":
        gamma = a.get("gamma", 0.1)
        counts: dict[int, int] = {}
        for m in a["milestones"]:  # torch keeps a Counter: a repeated milestone decays as many times
            counts[m] = counts.get(m, 0) + 1
        for m in sorted(counts):
            if m >= n or m < 0:
                continue  # a milestone 0 applies at construction, as in torch (last_epoch 0 is in the Counter)
            try:
                r[m] = gamma ** counts[m]  # torch: lr * gamma ** milestones[epoch], one Python pow
            except OverflowError:
                out.crash_at, out.crash = m, POW_OVERFLOW
                break
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
            # Python's float ** (libm pow), not np.power, which differs in the last bit on ~5 % of inputs.
            r[1 : m + 1] = base if power == 1.0 else np.fromiter((b**power for b in base.tolist()), np.float64, m)
    elif t == "MultiplicativeLR":
        exprs = a["lr_lambda"]
        if isinstance(exprs, list):
            raise NotReplayable  # per-group factors: the shared-factor trick does not apply
        if n > 1:
            steps = safe_expr.evaluate_steps(exprs, k[1:].astype(np.float64))
            r[1:] = steps.values
            if steps.error is not None and steps.error_at is not None:
                out.crash_at, out.crash = steps.error_at + 1, lambda_crash(steps.error)
    else:  # pragma: no cover - guarded by callers
        raise NotReplayable
    return out


def leaf(spec: SchedulerSpec, base: np.ndarray, v0: np.ndarray | None, n: int) -> Replayed:
    """Values for local steps 0..n-1 of one scheduler. ``v0``: value at local step 0 when it is
    handed over mid-way (SequentialLR), else None for a freshly constructed scheduler on ``base``."""
    g = base.shape[0]
    t, a = spec.type, spec.args
    if t in MULTIPLICATIVE:
        f = factors(spec, n)
        r = f.r
        start = base.copy() if v0 is None else v0
        if v0 is not None:
            r = r.copy()
            r[0] = 1.0
        lr = np.empty((g, n))
        with np.errstate(over="ignore", invalid="ignore"):  # inf and inf * 0 as Python floats give them
            for i in range(g):
                # cumprod performs torch's sequence of multiplications, rounding after each one.
                lr[i] = np.cumprod(np.concatenate(([start[i]], r)))[1:]
        return Replayed(lr, None).crashed(f.crash_at, f.crash)
    k = np.arange(n, dtype=np.int64)
    if t == "CosineAnnealingLR":
        return Replayed(_cosine(spec, base, base.copy() if v0 is None else v0, n), None)
    if t == "LambdaLR":
        e = a["lr_lambda"]
        exprs = e if isinstance(e, list) else [e] * g
        out = Replayed(np.empty((g, n)), None)
        for i in range(g):
            steps = safe_expr.evaluate_steps(exprs[i], k.astype(np.float64))
            out.lr[i] = base[i] * steps.values  # torch: base_lr * lmbda(last_epoch), one multiplication
            if steps.error is not None:
                out.crashed(steps.error_at, lambda_crash(steps.error))
        return out.crashed(None, None)
    if t == "CosineAnnealingWarmRestarts":
        return Replayed(_warm_restarts(spec, base, n), None)
    if t == "CyclicLR":
        return _cyclic(spec, g, n)
    if t == "OneCycleLR":
        return _one_cycle(spec, g, n)
    raise NotReplayable


def _warm_restarts(spec: SchedulerSpec, base: np.ndarray, n: int) -> np.ndarray:
    a = spec.args
    t0, tm, m = a["T_0"], a.get("T_mult", 1), a.get("eta_min", 0.0)
    k = np.arange(n, dtype=np.int64)
    if tm == 1:
        t_cur, t_i = k % t0, np.full(n, t0, dtype=np.int64)
    else:
        t_cur, t_i = np.empty(n, np.int64), np.empty(n, np.int64)
        pos, length = 0, t0
        while pos < n:  # lengths stay below n * T_mult: no int64 overflow
            end = min(n, pos + length)
            t_cur[pos:end] = np.arange(end - pos)
            t_i[pos:end] = length
            pos, length = end, length * tm
    cosv = 1 + exactmath.cos(math.pi * t_cur / t_i)
    return np.stack([m + (base[i] - m) * cosv / 2 for i in range(base.shape[0])])


def _cosine(spec: SchedulerSpec, base: np.ndarray, v0: np.ndarray, n: int) -> np.ndarray:
    tmax, m = spec.args["T_max"], spec.args.get("eta_min", 0.0)
    g = base.shape[0]
    lr = np.empty((g, n))
    lr[:, 0] = v0
    if n == 1:
        return lr
    j = np.arange(n, dtype=np.int64)
    c = 1 + exactmath.cos(math.pi * j / tmax)  # 1 + cos(pi * k / T_max), k = 0..n-1
    ratio = np.empty(n)
    # 1 + cos(...) is exactly 0 only at odd multiples of T_max, which are the restart points where
    # torch adds instead of dividing; elsewhere it would need T_max > 2e8 with k near it (k <= MAX_STEPS).
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio[1:] = c[1:] / c[:-1]
    restart = ((j - 1 - tmax) % (2 * tmax) == 0) & (j >= 1)
    add = (base - m) * (1 - math.cos(math.pi / tmax)) / 2
    idx = np.flatnonzero(restart).tolist()
    bounds = [1, *idx, n]
    if m == 0.0 and len(idx) * 64 < n:
        # eta_min = 0: (lr - 0) * ratio + 0 == lr * ratio exactly, so runs between the
        # restart points (where torch adds instead of multiplying) are cumulative products.
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
    # General eta_min: an affine recursion, replayed as plain Python float arithmetic (~9 ms per 100k steps).
    rat = ratio.tolist()
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


def per_group(v: Any, g: int) -> np.ndarray:
    return np.array(v if isinstance(v, list) else [v] * g, dtype=np.float64)


def _cyclic(spec: SchedulerSpec, g: int, n: int) -> Replayed:
    a = spec.args
    base_lr, max_lr = per_group(a["base_lr"], g), per_group(a["max_lr"], g)
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
    crash_at = None
    if mode == "triangular":
        scale = np.ones(n)
    elif mode == "triangular2":
        # torch: 1 / (2.0 ** (cycle - 1)); 2.0 ** 1024 overflows (OverflowError) from cycle 1025 on
        halvings, crash_at = exactmath.powers(2.0, cycle - 1)
        scale = 1 / halvings
    else:  # exp_range scales by iterations: gamma ** last_epoch, which overflows when gamma > 1
        scale, crash_at = exactmath.powers(a.get("gamma", 1.0), k.astype(np.float64))
    lr = np.stack([base_lr[i] + (max_lr[i] - base_lr[i]) * sf * scale for i in range(g)])
    mom = None
    if a.get("cycle_momentum", True):
        bm, mm = per_group(a.get("base_momentum", 0.8), g), per_group(a.get("max_momentum", 0.9), g)
        mom = np.stack([mm[i] - (mm[i] - bm[i]) * sf * scale for i in range(g)])
    return Replayed(lr, mom).crashed(crash_at, POW_OVERFLOW if crash_at is not None else None)


def one_cycle_total(a: dict[str, Any], n: int) -> int:
    """``total_steps`` as torch computes it (``epochs * steps_per_epoch``), else this preview's length."""
    total = a.get("total_steps")
    if total is None:
        total = a["epochs"] * a["steps_per_epoch"] if a.get("epochs") and a.get("steps_per_epoch") else n
    return int(total)


def _one_cycle(spec: SchedulerSpec, g: int, n: int) -> Replayed:
    a = spec.args
    total = one_cycle_total(a, n)
    pct_start = float(a.get("pct_start", 0.3))
    div, fdiv = a.get("div_factor", 25.0), a.get("final_div_factor", 1e4)
    max_lr = per_group(a["max_lr"], g)
    initial = max_lr / div
    min_lr = initial / fdiv
    mx, bm = per_group(a.get("max_momentum", 0.95), g), per_group(a.get("base_momentum", 0.85), g)
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
    crash = f"ValueError: Tried to step {crash_at} times. The specified number of total steps is {total}" if crash_at else None
    m = n if crash_at is None else min(n, crash_at)
    k = np.arange(m, dtype=np.float64)
    out = Replayed(np.full((g, n), np.nan), np.full((g, n), np.nan))
    cos = a.get("anneal_strategy", "cos") == "cos"
    done = np.zeros(m, dtype=bool)
    start = 0.0
    for i, (end, s_lr, e_lr, s_m, e_m) in enumerate(phases):
        sel = ~done & ((k <= end) | (i == len(phases) - 1))
        if sel.any():
            if end - start == 0:  # torch: (step - start) / (end - start), a ZeroDivisionError at this step
                out.crashed(int(np.argmax(sel)), "ZeroDivisionError: float division by zero")
                break
            pct = (k[sel] - start) / (end - start)
            cos_out = exactmath.cos(math.pi * pct) + 1 if cos else None
            for q in range(g):
                for arr, sk, ek in ((out.lr, s_lr, e_lr), (out.momentum, s_m, e_m)):
                    assert arr is not None
                    sv, ev = vals[sk][q], vals[ek][q]
                    arr[q, :m][sel] = ev + (sv - ev) / 2.0 * cos_out if cos_out is not None else (ev - sv) * pct + sv
        done |= sel
        start = end
    out.crashed(crash_at, crash)
    if not a.get("cycle_momentum", True):
        out.momentum = None
    return out
