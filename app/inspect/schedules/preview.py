"""The preview: one value per optimizer step for every param group, replayed or stepped."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from torchscope.inspect import param_groups as pg
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules.catalogue import MAX_TORCH_STEPS, StepMode
from torchscope.inspect.schedules.encoding import b64, encode
from torchscope.inspect.schedules.replay import NotReplayable, replay
from torchscope.inspect.schedules.requests import PreviewSpec, bad, parse_request
from torchscope.inspect.schedules.stepping import (
    Series,
    build_optimizer,
    build_scheduler,
    momentum_of,
    resolve_context,
    step_swa,
    step_torch,
)
from torchscope.inspect.schedules.warnings import crash_place, teach

CROSS_CHECK_STEPS = 24
TOLERANCE = 1e-12


@dataclass
class GroupSeries:
    name: str
    lr: np.ndarray  # one value per optimizer step (NaN: torch raised before this step)
    momentum: np.ndarray | None
    initial_lr: float
    params: list[str] | None = None
    count: int | None = None


@dataclass
class Preview:
    x: np.ndarray
    groups: list[GroupSeries]
    warnings: list[str]
    warning_codes: list[str]
    engine: str
    scheduler_steps: int
    steps_per_epoch: int
    epochs: int
    step: str
    momentum_key: str | None
    decimated: bool = False
    mistake: list[GroupSeries] | None = None
    timing_ms: float = 0.0
    membership: dict[str, Any] | None = None
    crash: dict[str, Any] | None = None  # where torch raises: {"x": first optimizer step without a value, "text"}
    mistake_crash: dict[str, Any] | None = None

    def to_dict(self, encoding: str = "json") -> dict[str, Any]:
        """The API answer. ``encoding="b64"`` sends each series as base64 float64 (the page uses it)."""

        def gs(g: GroupSeries) -> dict[str, Any]:
            d: dict[str, Any] = {
                "name": g.name,
                "lr": encode(g.lr, encoding),
                "momentum": None if g.momentum is None else encode(g.momentum, encoding),
                "initial_lr": g.initial_lr if math.isfinite(g.initial_lr) else None,
            }
            if g.params is not None:
                d["params"], d["count"] = g.params, g.count
            return d

        out: dict[str, Any] = {
            "x": b64(self.x.astype(np.float64)) if encoding == "b64" else encode(self.x, encoding),
            "groups": [gs(g) for g in self.groups],
            "warnings": self.warnings,
            "warning_codes": self.warning_codes,
            "engine": self.engine,
            "scheduler_steps": self.scheduler_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "step": self.step,
            "momentum_key": self.momentum_key,
            "decimated": self.decimated,
            "encoding": "json" if encoding == "raw" else encoding,
            "timing_ms": self.timing_ms,
        }
        out["crash"] = self.crash
        if self.mistake is not None:
            out["mistake"] = {"groups": [gs(g) for g in self.mistake], "crash": self.mistake_crash}
        if self.membership is not None:
            out["membership"] = self.membership
        return out


def compute_series(spec: PreviewSpec, n: int, params: Sequence[Sequence[torch.Tensor]] | None = None,
                   *, use_replay: bool = True) -> tuple[Series, torch.optim.Optimizer]:
    """Scheduler-step series of length ``n``: replayed (cross-checked against torch) or stepped."""
    spec = replace(spec, scheduler=resolve_context(spec.scheduler, n))
    opt = build_optimizer(spec, params)
    mkey = spec.optimizer.info.momentum_key
    base_lrs = np.array([float(g["lr"]) for g in opt.param_groups])
    base_mom = [momentum_of(g, mkey) for g in opt.param_groups]
    sched = build_scheduler(spec.scheduler, opt, n)
    if spec.metrics is not None or spec.swa is not None or not use_replay:
        return _stepped(spec, n, params, reason="this schedule is computed by stepping torch"), opt
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # inf (and inf - inf) as Python floats give them
            rep = replay(spec.scheduler, base_lrs, n)
    except NotReplayable:
        return _stepped(spec, n, params, reason="this composition is computed by stepping torch"), opt
    if mkey is None:
        momentum = None
    elif rep.momentum is None:
        momentum = np.repeat(np.array(base_mom, dtype=np.float64)[:, None], n, axis=1)
        if rep.crash_at is not None:
            momentum[:, rep.crash_at :] = np.nan  # nothing after torch raised
    else:
        momentum = rep.momentum
    series = Series(lr=rep.lr, momentum=momentum, crash=rep.crash, crash_at=rep.crash_at, engine="exact")
    # Cross-check the first steps against the real torch object; on any difference, trust torch.
    m = min(n, CROSS_CHECK_STEPS)
    check = step_torch(sched, opt, m, mkey)
    ok = _close(check.lr, rep.lr[:, :m]) and (momentum is None or _close(check.momentum, momentum[:, :m]))
    if not ok:  # pragma: no cover - would be a replay bug or a new torch behaviour
        return _stepped(spec, n, params, reason="the replay disagreed with torch"), opt
    return series, opt


def _stepped(spec: PreviewSpec, n: int, params: Sequence[Sequence[torch.Tensor]] | None, *, reason: str) -> Series:
    """Step fresh real torch objects ``n`` times (what the replay stands in for when it can)."""
    if n > MAX_TORCH_STEPS:
        raise bad("epochs", f"{reason}; {n} scheduler steps is over the limit of {MAX_TORCH_STEPS}")
    opt = build_optimizer(spec, params)
    sched = build_scheduler(spec.scheduler, opt, n)
    mkey = spec.optimizer.info.momentum_key
    if spec.swa is None:
        return step_torch(sched, opt, n, mkey, spec.metrics)
    swa = build_scheduler(spec.swa.scheduler, opt, n)
    return step_swa(sched, swa, spec.swa.start, opt, n, mkey, spec.metrics)


def _close(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities included
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        return bool(np.all(same | (diff <= TOLERANCE * np.maximum(1.0, np.abs(b)))))


def _expand(series: Series, spec: PreviewSpec, per: StepMode) -> tuple[np.ndarray, np.ndarray | None]:
    """Scheduler-step series -> one entry per optimizer step."""
    if per is StepMode.BATCH:
        return series.lr, series.momentum
    s = spec.steps_per_epoch
    return np.repeat(series.lr, s, axis=1), None if series.momentum is None else np.repeat(series.momentum, s, axis=1)


def _pick(n: int, max_points: int | None) -> np.ndarray | None:
    if max_points is None or n <= max_points:
        return None
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def preview(spec: PreviewSpec, params: Sequence[Sequence[torch.Tensor]] | None = None,
            param_names: Sequence[Sequence[str]] | None = None) -> Preview:
    """The preview the API returns: one value per optimizer step for every group."""
    t0 = time.perf_counter()
    n = spec.scheduler_steps
    series, opt = compute_series(spec, n, params)
    lr, mom = _expand(series, spec, spec.step)
    total = spec.total_steps
    idx = _pick(total, spec.max_points)
    if idx is not None:
        lr = lr[:, idx]
        mom = None if mom is None else mom[:, idx]
        x = idx
    else:
        x = np.arange(total, dtype=np.int64)
    initial = [float(g.get("initial_lr", g["lr"])) for g in opt.param_groups]
    groups = [
        GroupSeries(
            name=spec.group_names[i],
            lr=lr[i],
            momentum=None if mom is None else mom[i],
            initial_lr=initial[i],
            params=None if param_names is None else list(param_names[i]),
            count=None if param_names is None else len(param_names[i]),
        )
        for i in range(lr.shape[0])
    ]
    codes, texts = teach(spec, series, opt)
    mistake = None
    crashes: list[dict[str, Any] | None] = [None]
    if spec.overlay_batch_mistake and spec.step is StepMode.EPOCH and spec.steps_per_epoch > 1:
        mistake = _mistake_overlay(spec, params, idx, initial, codes, texts, crashes)
    crash = None
    if series.crash is not None and series.crash_at is not None:
        per = spec.steps_per_epoch if spec.step is StepMode.EPOCH else 1
        crash = {"x": series.crash_at * per, "scheduler_step": series.crash_at, "text": series.crash}
    return Preview(
        x=x,
        groups=groups,
        warnings=texts,
        warning_codes=codes,
        engine=series.engine,
        scheduler_steps=n,
        steps_per_epoch=spec.steps_per_epoch,
        epochs=spec.epochs,
        step=spec.step.value,
        momentum_key=spec.optimizer.info.momentum_key,
        decimated=idx is not None,
        mistake=mistake,
        timing_ms=round((time.perf_counter() - t0) * 1000, 3),
        crash=crash,
        mistake_crash=crashes[0],
    )


def _mistake_overlay(spec: PreviewSpec, params: Sequence[Sequence[torch.Tensor]] | None, idx: np.ndarray | None,
                     initial: list[float], codes: list[str], texts: list[str],
                     crashes: list[dict[str, Any] | None]) -> list[GroupSeries] | None:
    """The same code with ``scheduler.step()`` moved into the batch loop by mistake.

    Arguments the run decided are kept as the user's code has them (OneCycleLR's ``total_steps``
    defaulted to the number of epochs stays that number), so torch raises where it would.
    """
    total = spec.total_steps
    resolved = resolve_context(spec.scheduler, spec.scheduler_steps)
    wrong = replace(spec, step=StepMode.BATCH, overlay_batch_mistake=False, scheduler=resolved)
    try:
        ms, _ = compute_series(wrong, wrong.scheduler_steps, params)
    except InvalidRequest as err:
        codes.append("overlay-unavailable")
        texts.append(f"The per-batch overlay could not be computed: {err.message}")
        return None
    mlr, mmom = ms.lr, ms.momentum
    if idx is not None:
        mlr = mlr[:, idx]
        mmom = None if mmom is None else mmom[:, idx]
    codes.append("overlay-batch-mistake")
    texts.append(
        f"Overlay: the same {spec.scheduler.type} stepped once per batch by mistake ({total} scheduler steps "
        f"instead of {spec.epochs}); every step-count argument then counts batches, not epochs."
    )
    if ms.crash is not None and ms.crash_at is not None:
        crashes[0] = {"x": ms.crash_at, "scheduler_step": ms.crash_at, "text": ms.crash}
        codes.append("overlay-crash")
        texts.append(f"Stepped per batch by mistake, {crash_place(ms.crash_at, StepMode.BATCH, spec.steps_per_epoch)}: "
                     f"{ms.crash}. The training run would stop there (the overlay ends).")
    return [
        GroupSeries(name=spec.group_names[i], lr=mlr[i], momentum=None if mmom is None else mmom[i], initial_lr=initial[i])
        for i in range(mlr.shape[0])
    ]


def model_preview(body: Any, model: nn.Module) -> Preview:
    """Preview with param groups from a served model (``groups`` hold ``match`` patterns)."""
    if not isinstance(body, dict):
        raise bad("body", "must be a JSON object")
    rules = pg.parse_rules(body.get("groups", []))
    membership = pg.resolve(model, rules)
    spec = parse_request(
        body,
        group_names=[g.name for g in membership.groups],
        group_overrides=[g.options for g in membership.groups],
    )
    params = dict(model.named_parameters())
    # The real parameters (an optimizer only keeps references; nothing is stepped on them:
    # schedulers read and write param_groups options only). Uninitialized lazy parameters
    # cannot join an optimizer, so those get a stand-in: the schedule does not depend on them.
    tensors = [
        [torch.zeros(1, requires_grad=True) if isinstance(params[n], nn.parameter.UninitializedParameter) else params[n]
         for n in g.params]
        for g in membership.groups
    ]
    result = preview(spec, tensors, [g.params for g in membership.groups])
    result.membership = membership.to_dict()
    result.warnings = list(membership.warnings) + result.warnings
    result.warning_codes = ["param-groups"] * len(membership.warnings) + result.warning_codes
    return result
