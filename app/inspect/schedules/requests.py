"""Request parsing: preview JSON -> typed specs; every error names its field."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchscope.inspect import safe_expr
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules.budget import check_work
from torchscope.inspect.schedules.catalogue import (
    MAX_GROUPS,
    MAX_INT,
    MAX_STEPS,
    METRIC_SHAPES,
    OPTIMIZERS,
    SCHEDULERS,
    ArgInfo,
    ArgKind,
    OptimizerInfo,
    SchedulerInfo,
    StepMode,
)


@dataclass(frozen=True)
class SchedulerSpec:
    type: str
    args: dict[str, Any]  # coerced values; EXPR args hold safe_expr.Expr (or a list of them)
    children: tuple[SchedulerSpec, ...]
    field: str

    @property
    def info(self) -> SchedulerInfo:
        return SCHEDULERS[self.type]


@dataclass(frozen=True)
class OptimizerSpec:
    type: str
    args: dict[str, Any]

    @property
    def info(self) -> OptimizerInfo:
        return OPTIMIZERS[self.type]


@dataclass(frozen=True)
class SwaSpec:
    """Stochastic weight averaging as torch's docs loop it: ``if epoch > start: swa.step() else: scheduler.step()``."""

    start: int  # the last scheduler-step index the main scheduler takes; later steps go to ``scheduler``
    scheduler: SchedulerSpec  # SWALR, usually


@dataclass(frozen=True)
class PreviewSpec:
    optimizer: OptimizerSpec
    groups: tuple[dict[str, Any], ...]  # per-group option overrides, in torch's order
    group_names: tuple[str, ...]
    scheduler: SchedulerSpec
    epochs: int
    steps_per_epoch: int
    step: StepMode
    metrics: tuple[float, ...] | None = None
    overlay_batch_mistake: bool = False
    max_points: int | None = None
    swa: SwaSpec | None = None

    @property
    def scheduler_steps(self) -> int:
        return self.epochs if self.step is StepMode.EPOCH else self.epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def bad(field_name: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"{field_name}: {reason}", field=field_name, reason=reason)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_range(info: ArgInfo, value: float, where: str) -> None:
    if not math.isfinite(value):
        raise bad(where, "must be a finite number")
    lo, hi = info.minimum, info.maximum
    if lo is not None and (value < lo or (info.exclusive_minimum and value == lo)):
        op = ">" if info.exclusive_minimum else ">="
        raise bad(where, f"must be {op} {lo:g}, got {value:g}")
    if hi is not None and (value > hi or (info.exclusive_maximum and value == hi)):
        op = "<" if info.exclusive_maximum else "<="
        raise bad(where, f"must be {op} {hi:g}, got {value:g}")


def as_int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        raise bad(where, f"must be an integer, got {v!r}")
    if abs(v) > MAX_INT:
        raise bad(where, f"{v:g} is too large (the limit is {MAX_INT:g})")
    return int(v)


def _as_float(v: Any, where: str) -> float:
    if not _is_number(v):
        raise bad(where, f"must be a number, got {v!r}")
    return float(v)


def _coerce(info: ArgInfo, value: Any, where: str, n_groups: int) -> Any:
    kind = info.kind
    if kind is ArgKind.INT:
        out = as_int(value, where)
        _check_range(info, out, where)
        return out
    if kind is ArgKind.OPTIONAL_INT:
        if value is None:
            return None
        out = as_int(value, where)
        _check_range(info, out, where)
        return out
    if kind is ArgKind.FLOAT:
        f = _as_float(value, where)
        _check_range(info, f, where)
        return f
    if kind is ArgKind.BOOL:
        if not isinstance(value, bool):
            raise bad(where, f"must be true or false, got {value!r}")
        return value
    if kind is ArgKind.CHOICE:
        assert info.choices is not None
        if value not in info.choices:
            raise bad(where, f"must be one of {', '.join(info.choices)}, got {value!r}")
        return value
    if kind is ArgKind.INT_LIST:
        if not isinstance(value, list):
            raise bad(where, "must be a list of integers")
        ints = [as_int(v, f"{where}[{i}]") for i, v in enumerate(value)]
        for i, v in enumerate(ints):
            _check_range(info, v, f"{where}[{i}]")
        for i in range(1, len(ints) if info.increasing else 0):
            if ints[i] <= ints[i - 1]:
                raise bad(where, f"must be strictly increasing, but {ints[i]} follows {ints[i - 1]}")
        return ints
    if kind is ArgKind.FLOAT_OR_LIST:
        if isinstance(value, list):
            if len(value) != n_groups:
                raise bad(where, f"has {len(value)} values but there are {n_groups} param groups")
            vals = [_as_float(v, f"{where}[{i}]") for i, v in enumerate(value)]
            for i, fv in enumerate(vals):
                _check_range(info, fv, f"{where}[{i}]")
            return vals
        f = _as_float(value, where)
        _check_range(info, f, where)
        return f
    if kind is ArgKind.FLOAT_PAIR:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise bad(where, "must be a pair of numbers, e.g. [0.9, 0.999]")
        pair = tuple(_as_float(v, f"{where}[{i}]") for i, v in enumerate(value))
        for i, fv in enumerate(pair):
            _check_range(info, fv, f"{where}[{i}]")
        return pair
    if kind is ArgKind.EXPR:
        if isinstance(value, list):
            if len(value) != n_groups:
                raise bad(where, f"has {len(value)} expressions but there are {n_groups} param groups")
            return [_parse_expr(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return _parse_expr(value, where)
    raise bad(where, f"argument type {info.annotation} cannot be set from the lab")


def _parse_expr(value: Any, where: str) -> safe_expr.Expr:
    if _is_number(value):
        value = repr(value)
    try:
        return safe_expr.parse(value)
    except safe_expr.SafeExprError as err:
        raise InvalidRequest(
            f"{where}: {err.message}", field=where, reason=err.reason, position=err.position
        ) from None


def parse_scheduler(raw: Any, where: str, n_groups: int, depth: int = 0) -> SchedulerSpec:
    if depth > 4:
        raise bad(where, "compositions nest at most 4 deep")
    if not isinstance(raw, dict):
        raise bad(where, 'must be an object like {"type": "StepLR", "args": {...}}')
    typ = raw.get("type")
    if not isinstance(typ, str) or typ not in SCHEDULERS:
        known = ", ".join(SCHEDULERS)
        raise bad(f"{where}.type", f"unknown scheduler {typ!r}; known: {known}")
    info = SCHEDULERS[typ]
    args_raw = raw.get("args", {}) or {}
    if not isinstance(args_raw, dict):
        raise bad(f"{where}.args", "must be an object")
    args: dict[str, Any] = {}
    children: list[SchedulerSpec] = []
    for name in args_raw:
        if info.arg(name) is None:
            known = ", ".join(a.name for a in info.args if a.kind is not ArgKind.UNSUPPORTED)
            raise bad(f"{where}.args.{name}", f"{typ} has no argument {name!r}; it takes {known}")
    for a in info.args:
        awhere = f"{where}.args.{a.name}"
        if a.name not in args_raw:
            if a.required:
                raise bad(awhere, f"{typ} needs {a.name!r}")
            continue
        value = args_raw[a.name]
        if a.kind is ArgKind.SCHEDULERS:
            if not isinstance(value, list) or not value:
                raise bad(awhere, "must be a non-empty list of schedulers")
            children = [parse_scheduler(v, f"{awhere}[{i}]", n_groups, depth + 1) for i, v in enumerate(value)]
            for c in children:
                if c.info.needs_metrics:
                    raise bad(c.field, f"{typ} cannot contain ReduceLROnPlateau (its step() needs a metric)")
            continue
        if a.kind is ArgKind.UNSUPPORTED:
            raise bad(awhere, f"{a.name} ({a.annotation}) cannot be set from the lab")
        args[a.name] = _coerce(a, value, awhere, n_groups)
    spec = SchedulerSpec(type=typ, args=args, children=tuple(children), field=where)
    _semantic_checks(spec)
    return spec


def _semantic_checks(spec: SchedulerSpec) -> None:
    """Checks torch does late (at the first step, with a bare ZeroDivisionError) or not at all."""
    a, w = spec.args, spec.field
    if spec.type == "SequentialLR":
        ms = a.get("milestones", [])
        if len(ms) != len(spec.children) - 1:
            raise bad(
                f"{w}.args.milestones",
                f"needs {len(spec.children) - 1} milestone(s) for {len(spec.children)} schedulers, got {len(ms)}",
            )
    if spec.type == "OneCycleLR" and "pct_start" in a:
        a["pct_start"] = float(a["pct_start"])  # torch insists on a float instance


def parse_request(body: Any, *, group_names: Sequence[str] | None = None, group_overrides: Sequence[dict[str, Any]] | None = None) -> PreviewSpec:
    """Validate a preview request. Model-based callers pass the resolved groups instead of ``groups``."""
    if not isinstance(body, dict):
        raise bad("body", "must be a JSON object")
    opt_raw = body.get("optimizer", {"type": "SGD"})
    if not isinstance(opt_raw, dict):
        raise bad("optimizer", 'must be an object like {"type": "SGD", "lr": 0.1}')
    otype = opt_raw.get("type", "SGD")
    if not isinstance(otype, str) or otype not in OPTIMIZERS:
        raise bad("optimizer.type", f"unknown optimizer {otype!r}; known: {', '.join(OPTIMIZERS)}")
    oinfo = OPTIMIZERS[otype]
    opt_args = _parse_options(oinfo, {k: v for k, v in opt_raw.items() if k != "type"}, "optimizer")
    if group_overrides is None:
        groups_raw = body.get("groups", [{}])
        if groups_raw is None or groups_raw == []:
            groups_raw = [{}]
        if not isinstance(groups_raw, list):
            raise bad("groups", "must be a list of objects ({} = optimizer defaults)")
        if len(groups_raw) > MAX_GROUPS:
            raise bad("groups", f"has {len(groups_raw)} groups; the limit is {MAX_GROUPS}")
        overrides = []
        names = []
        for i, g in enumerate(groups_raw):
            if not isinstance(g, dict):
                raise bad(f"groups[{i}]", "must be an object ({} = optimizer defaults)")
            names.append(str(g.get("name") or f"group{i}"))
            overrides.append(_parse_options(oinfo, {k: v for k, v in g.items() if k != "name"}, f"groups[{i}]"))
    else:
        overrides = [
            _parse_options(oinfo, dict(g), f"groups[{i}]") for i, g in enumerate(group_overrides)
        ]
        names = list(group_names or [f"group{i}" for i in range(len(overrides))])
    n_groups = len(overrides)
    epochs = as_int(body.get("epochs", 10), "epochs")
    spe = as_int(body.get("steps_per_epoch", 1), "steps_per_epoch")
    if epochs < 1:
        raise bad("epochs", f"must be >= 1, got {epochs}")
    if spe < 1:
        raise bad("steps_per_epoch", f"must be >= 1, got {spe}")
    if epochs * spe > MAX_STEPS:
        raise bad("epochs", f"epochs * steps_per_epoch = {epochs * spe} is over the limit of {MAX_STEPS} steps")
    step_raw = body.get("step", "epoch")
    if not isinstance(step_raw, str) or step_raw not in {m.value for m in StepMode}:
        raise bad("step", f'must be "epoch" or "batch", got {step_raw!r}')
    if "scheduler" not in body:
        raise bad("scheduler", 'is required, e.g. {"type": "StepLR", "args": {"step_size": 10}}')
    sched = parse_scheduler(body["scheduler"], "scheduler", n_groups)
    metrics = _parse_metrics(body, epochs, spe, StepMode(step_raw)) if sched.info.needs_metrics else None
    max_points = body.get("max_points")
    if max_points is not None:
        max_points = as_int(max_points, "max_points")
        if max_points < 2:
            raise bad("max_points", "must be >= 2")
    overlay = body.get("overlay_batch_mistake", False)
    if not isinstance(overlay, bool):
        raise bad("overlay_batch_mistake", "must be true or false")
    swa = _parse_swa(body.get("swa"), sched, n_groups)
    check_work(epochs * spe, n_groups, [sched] if swa is None else [sched, swa.scheduler], overlay)
    return PreviewSpec(
        optimizer=OptimizerSpec(type=otype, args=opt_args),
        groups=tuple(overrides),
        group_names=tuple(names),
        scheduler=sched,
        epochs=epochs,
        steps_per_epoch=spe,
        step=StepMode(step_raw),
        metrics=metrics,
        overlay_batch_mistake=overlay,
        max_points=max_points,
        swa=swa,
    )


def _parse_swa(raw: Any, main: SchedulerSpec, n_groups: int) -> SwaSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad("swa", 'must be an object like {"start": 75, "scheduler": {"type": "SWALR", "args": {"swa_lr": 0.05}}}')
    start = as_int(raw.get("start", raw.get("swa_start")), "swa.start")
    if start < 0:
        raise bad("swa.start", f"must be >= 0, got {start}")
    if "scheduler" not in raw:
        raise bad("swa.scheduler", 'is required, e.g. {"type": "SWALR", "args": {"swa_lr": 0.05}}')
    sched = parse_scheduler(raw["scheduler"], "swa.scheduler", n_groups)
    if sched.info.needs_metrics:
        raise bad("swa.scheduler.type", "the SWA phase steps its scheduler without a metric")
    del main
    return SwaSpec(start=start, scheduler=sched)


def _parse_options(info: OptimizerInfo, raw: dict[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for k, v in raw.items():
        a = info.arg(k)
        if a is None or a.kind is ArgKind.UNSUPPORTED:
            known = ", ".join(x.name for x in info.args if x.kind is not ArgKind.UNSUPPORTED)
            raise bad(f"{where}.{k}", f"{info.name} has no option {k!r}; it takes {known}")
        out[k] = _coerce(a, v, f"{where}.{k}", 1)
    return out


# Metric series for ReduceLROnPlateau


def synthetic_metrics(shape: str, n: int, seed: int = 0) -> list[float]:
    """A validation-loss-like curve of ``n`` values: deterministic for a given seed."""
    k = np.arange(n, dtype=np.float64)
    if shape == "decrease":
        y = 1.0 / (1.0 + 0.1 * k)
    elif shape == "plateau":
        knee = max(1.0, n / 3)
        y = np.where(k < knee, 1.0 / (1.0 + 0.3 * k), 1.0 / (1.0 + 0.3 * knee))
    elif shape == "noisy":
        rng = np.random.default_rng(seed)
        y = 1.0 / (1.0 + 0.05 * k) + rng.normal(0.0, 0.03, n)
    elif shape == "increase":
        y = 1.0 + 0.01 * k
    else:
        raise bad("metric_shape", f"unknown shape {shape!r}; known: {', '.join(METRIC_SHAPES)}")
    return [float(v) for v in y]


def _parse_metrics(body: dict[str, Any], epochs: int, spe: int, step: StepMode) -> tuple[float, ...]:
    n = epochs if step is StepMode.EPOCH else epochs * spe
    # Accepted at the top level or inside the scheduler object (where some clients put them).
    sched_raw = body.get("scheduler")
    sched: dict[str, Any] = sched_raw if isinstance(sched_raw, dict) else {}
    raw = body.get("metrics", sched.get("metrics"))
    if raw is None:
        shape = body.get("metric_shape", sched.get("metric_shape", "plateau"))
        seed = body.get("metric_seed", sched.get("metric_seed", 0))
        if not isinstance(shape, str):
            raise bad("metric_shape", f"must be one of {', '.join(METRIC_SHAPES)}")
        return tuple(synthetic_metrics(shape, n, as_int(seed, "metric_seed")))
    if isinstance(raw, str):  # pasted text: numbers separated by commas, spaces or newlines
        parts = [p for p in re.split(r"[\s,;]+", raw.strip()) if p]
        try:
            raw = [float(p) for p in parts]
        except ValueError:
            wrong = next(p for p in parts if not _float_ok(p))
            raise bad("metrics", f"{wrong!r} is not a number") from None
    if not isinstance(raw, list) or not raw:
        raise bad("metrics", "must be a non-empty list of numbers (one per scheduler step)")
    vals = []
    for i, v in enumerate(raw):
        f = _as_float(v, f"metrics[{i}]")
        if not math.isfinite(f):
            raise bad(f"metrics[{i}]", "must be finite")
        vals.append(f)
    return tuple(vals)


def _float_ok(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
