"""LR schedule lab: the scheduler catalogue, building real torch schedulers, and exact previews.

The catalogue is read from ``torch.optim.lr_scheduler.__all__`` with ``inspect.signature``;
``OVERRIDES`` adds what a signature cannot say (ranges, per-batch vs per-epoch intent).

A preview answers: which learning rate (and momentum / ``betas[0]``) does optimizer step
``i`` use, for each param group? We always build the real torch optimizer and scheduler
(so torch validates the arguments), then compute the series one of two ways:

* ``exact``: numpy replays of torch's own update rules. Recursive ("chainable") schedulers
  multiply the previous lr by a factor each step; ``np.cumprod`` performs exactly the same
  sequence of IEEE multiplications, so those series are bit-identical to stepping torch.
  Schedulers that are a function of the step (CyclicLR, OneCycleLR, warm restarts,
  LambdaLR) are evaluated with the same operations in the same order. The first steps are
  cross-checked against the real torch object; any mismatch falls back to stepping.
* ``torch``: step the real scheduler and read ``get_last_lr()`` (ReduceLROnPlateau,
  compositions the replay does not cover).

``closed_form`` gives torch's textbook closed forms; tests show how close they are to
stepping (they are not what torch does: its recursive forms drift by a few ulps).
"""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import math
import re
import time
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler as lrs

from torchscope.inspect import param_groups as pg
from torchscope.inspect import safe_expr
from torchscope.inspect.errors import InvalidRequest

MAX_STEPS = 1_000_000  # optimizer steps in one preview (exact engine)
MAX_TORCH_STEPS = 300_000  # scheduler steps when we must step torch itself
MAX_GROUPS = 64
CROSS_CHECK_STEPS = 24
TOLERANCE = 1e-12


class StepMode(StrEnum):
    EPOCH = "epoch"
    BATCH = "batch"


class Intent(StrEnum):
    """How a scheduler is meant to be stepped."""

    EPOCH = "epoch"
    BATCH = "batch"
    EITHER = "either"


class ArgKind(StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    INT_LIST = "int_list"
    FLOAT_OR_LIST = "float_or_list"
    OPTIONAL_INT = "optional_int"
    FLOAT_PAIR = "float_pair"
    EXPR = "expr"
    SCHEDULERS = "schedulers"
    UNSUPPORTED = "unsupported"


# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArgInfo:
    name: str
    annotation: str
    kind: ArgKind
    required: bool
    default: Any
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    per_group: bool = False
    example: Any = None
    help: str = ""


@dataclass(frozen=True)
class SchedulerInfo:
    name: str
    doc: str
    intent: Intent
    args: tuple[ArgInfo, ...]
    composite: bool = False
    needs_metrics: bool = False
    changes_momentum: bool = False
    replay: bool = False  # the exact numpy replay covers it

    def arg(self, name: str) -> ArgInfo | None:
        return next((a for a in self.args if a.name == name), None)


@dataclass(frozen=True)
class OptimizerInfo:
    name: str
    doc: str
    args: tuple[ArgInfo, ...]
    momentum_key: str | None  # "momentum", "betas" (betas[0]) or None

    def arg(self, name: str) -> ArgInfo | None:
        return next((a for a in self.args if a.name == name), None)


# What a signature cannot say. Keys: scheduler -> {"intent", "args": {arg: {...}}}.
# Ranges mirror the checks torch does (or should do: T_max=0 divides by zero at the first step).
_NONNEG: dict[str, Any] = {"minimum": 0}
_POS_INT: dict[str, Any] = {"minimum": 1}
_UNIT: dict[str, Any] = {"minimum": 0, "maximum": 1}
OVERRIDES: dict[str, dict[str, Any]] = {
    "LambdaLR": {
        "intent": Intent.EPOCH,
        "args": {"lr_lambda": {"example": "0.95 ** epoch", "help": "factor of each group's initial lr at epoch"}},
    },
    "MultiplicativeLR": {
        "intent": Intent.EPOCH,
        "args": {"lr_lambda": {"example": "0.95", "help": "factor applied to the current lr at each step"}},
    },
    "StepLR": {"intent": Intent.EPOCH, "args": {"step_size": {**_POS_INT, "example": 10}, "gamma": _NONNEG}},
    "MultiStepLR": {
        "intent": Intent.EPOCH,
        "args": {"milestones": {"minimum": 0, "example": [30, 60], "help": "increasing steps"}, "gamma": _NONNEG},
    },
    "ConstantLR": {
        "intent": Intent.EPOCH,
        "args": {"factor": {"minimum": 0, "exclusive_minimum": True, "maximum": 1}, "total_iters": _NONNEG},
    },
    "LinearLR": {
        "intent": Intent.EITHER,
        "args": {
            "start_factor": {"minimum": 0, "exclusive_minimum": True, "maximum": 1},
            "end_factor": _UNIT,
            "total_iters": _POS_INT,
        },
    },
    "ExponentialLR": {
        "intent": Intent.EPOCH,
        "args": {"gamma": {"minimum": 0, "exclusive_minimum": True, "example": 0.95}},
    },
    "SequentialLR": {
        "intent": Intent.EITHER,
        "args": {
            "schedulers": {
                "example": [
                    {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
                    {"type": "CosineAnnealingLR", "args": {"T_max": 45}},
                ]
            },
            "milestones": {"minimum": 1, "example": [5], "help": "step at which each next scheduler takes over"},
        },
    },
    "CosineAnnealingLR": {
        "intent": Intent.EPOCH,
        "args": {"T_max": {**_POS_INT, "example": 50, "help": "half period, in scheduler steps"}, "eta_min": _NONNEG},
    },
    "ChainedScheduler": {
        "intent": Intent.EITHER,
        "args": {
            "schedulers": {
                "example": [
                    {"type": "ConstantLR", "args": {"factor": 0.5, "total_iters": 5}},
                    {"type": "ExponentialLR", "args": {"gamma": 0.95}},
                ]
            }
        },
    },
    "ReduceLROnPlateau": {
        "intent": Intent.EPOCH,
        "args": {
            "factor": {"minimum": 0, "maximum": 1, "exclusive_maximum": True},
            "patience": _NONNEG,
            "threshold": _NONNEG,
            "cooldown": _NONNEG,
            "min_lr": _NONNEG,
            "eps": _NONNEG,
        },
    },
    "CyclicLR": {
        "intent": Intent.BATCH,
        "args": {
            "base_lr": {"minimum": 0, "example": 0.001},
            "max_lr": {"minimum": 0, "example": 0.1},
            "step_size_up": _POS_INT,
            "step_size_down": _POS_INT,
            "gamma": {"minimum": 0, "exclusive_minimum": True},
            "base_momentum": _UNIT,
            "max_momentum": _UNIT,
        },
    },
    "CosineAnnealingWarmRestarts": {
        "intent": Intent.EITHER,
        "args": {"T_0": {**_POS_INT, "example": 10}, "T_mult": _POS_INT, "eta_min": _NONNEG},
    },
    "OneCycleLR": {
        "intent": Intent.BATCH,
        "args": {
            "max_lr": {"minimum": 0, "exclusive_minimum": True, "example": 0.1},
            "total_steps": {**_POS_INT, "help": "defaults to the number of scheduler steps in this preview"},
            "epochs": _POS_INT,
            "steps_per_epoch": _POS_INT,
            "pct_start": _UNIT,
            "base_momentum": _UNIT,
            "max_momentum": _UNIT,
            "div_factor": {"minimum": 0, "exclusive_minimum": True},
            "final_div_factor": {"minimum": 0, "exclusive_minimum": True},
        },
    },
    "PolynomialLR": {"intent": Intent.EPOCH, "args": {"total_iters": _POS_INT, "power": _NONNEG}},
}
OPTIMIZER_NAMES = ("SGD", "Adam", "AdamW", "RMSprop")
_OPTIMIZER_OVERRIDES: dict[str, dict[str, Any]] = {
    "lr": {"minimum": 0},
    "momentum": _UNIT,
    "dampening": _UNIT,
    "weight_decay": _NONNEG,
    "eps": _NONNEG,
    "alpha": _UNIT,
    "betas": {"minimum": 0, "maximum": 1, "exclusive_maximum": True},
}
# Implementation switches that change nothing about the schedule.
_HIDDEN_OPTIMIZER_ARGS = {"params", "foreach", "fused", "capturable", "differentiable", "maximize"}
_HIDDEN_SCHEDULER_ARGS = {"optimizer", "last_epoch", "verbose"}
# Changing momentum each step: the teaching warning keys off this.
_MOMENTUM_SCHEDULERS = {"CyclicLR", "OneCycleLR"}
# Schedulers the numpy replay reproduces exactly (see the module docstring).
_MULTIPLICATIVE = {"StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "MultiplicativeLR"}
_REPLAY_LEAVES = _MULTIPLICATIVE | {"CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"}


def _kind_of(annotation: str, name: str) -> tuple[ArgKind, tuple[str, ...] | None, bool]:
    """(kind, choices, per_group) from the annotation string torch declares."""
    ann = annotation.replace(" ", "").replace("torch.", "")
    lit = re.fullmatch(r"Literal\[(.*)\]", ann)
    if lit:
        return ArgKind.CHOICE, tuple(x.strip("'\"") for x in lit.group(1).split(",")), False
    if "Callable[[int]" in ann:
        return ArgKind.EXPR, None, True
    if "Callable" in ann:
        return ArgKind.UNSUPPORTED, None, False
    if "LRScheduler" in ann:
        return ArgKind.SCHEDULERS, None, False
    if ann in {"int"}:
        return ArgKind.INT, None, False
    if ann in {"int|None", "Optional[int]"}:
        return ArgKind.OPTIONAL_INT, None, False
    if ann in {"float", "float|Tensor"}:
        return ArgKind.FLOAT, None, False
    if ann == "bool":
        return ArgKind.BOOL, None, False
    if ann in {"Iterable[int]", "list[int]", "Sequence[int]"}:
        return ArgKind.INT_LIST, None, False
    if ann in {"float|list[float]", "list[float]|float"}:
        return ArgKind.FLOAT_OR_LIST, None, True
    if ann.startswith("tuple[float"):
        return ArgKind.FLOAT_PAIR, None, False
    return ArgKind.UNSUPPORTED, None, False


def _json_default(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _args_from_signature(
    cls: type, hidden: set[str], overrides: dict[str, dict[str, Any]]
) -> tuple[ArgInfo, ...]:
    sig = inspect.signature(cls)
    out = []
    for p in sig.parameters.values():
        if p.name in hidden or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
        kind, choices, per_group = _kind_of(ann, p.name)
        extra = overrides.get(p.name, {})
        out.append(
            ArgInfo(
                name=p.name,
                annotation=ann,
                kind=kind,
                required=p.default is inspect.Parameter.empty,
                default=_json_default(p.default),
                choices=choices,
                per_group=per_group,
                **extra,
            )
        )
    return tuple(out)


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _abstract_names() -> set[str]:
    return {n for n in lrs.__all__ if n in {"LRScheduler", "_LRScheduler"} or inspect.isabstract(getattr(lrs, n))}


def _build_catalogue() -> dict[str, SchedulerInfo]:
    out: dict[str, SchedulerInfo] = {}
    abstract = _abstract_names()
    for name in lrs.__all__:
        cls = getattr(lrs, name, None)
        if name in abstract or not isinstance(cls, type):
            continue
        over = OVERRIDES.get(name, {})
        args = _args_from_signature(cls, _HIDDEN_SCHEDULER_ARGS, over.get("args", {}))
        out[name] = SchedulerInfo(
            name=name,
            doc=_first_line(cls),
            intent=over.get("intent", Intent.EITHER),
            args=args,
            composite=any(a.kind is ArgKind.SCHEDULERS for a in args),
            needs_metrics="metrics" in inspect.signature(getattr(cls, "step")).parameters,  # noqa: B009
            changes_momentum=name in _MOMENTUM_SCHEDULERS,
            replay=name in _REPLAY_LEAVES or name in {"SequentialLR", "ChainedScheduler"},
        )
    return out


def _build_optimizers() -> dict[str, OptimizerInfo]:
    out = {}
    for name in OPTIMIZER_NAMES:
        cls = getattr(torch.optim, name)
        args = _args_from_signature(cls, _HIDDEN_OPTIMIZER_ARGS, _OPTIMIZER_OVERRIDES)
        names = {a.name for a in args}
        key = "betas" if "betas" in names else "momentum" if "momentum" in names else None
        out[name] = OptimizerInfo(name=name, doc=_first_line(cls), args=args, momentum_key=key)
    return out


SCHEDULERS: dict[str, SchedulerInfo] = _build_catalogue()
OPTIMIZERS: dict[str, OptimizerInfo] = _build_optimizers()


def warm_up() -> None:
    """Build one optimizer: torch imports torch._dynamo on the first one (~3 s on a small machine)."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def catalogue() -> dict[str, Any]:
    """The JSON the page builds its forms from (``GET /api/schedulers``)."""

    def info(x: SchedulerInfo | OptimizerInfo) -> dict[str, Any]:
        d = asdict(x)
        d["args"] = [{k: v for k, v in asdict(a).items()} for a in x.args]
        return d

    return {
        "torch_version": torch.__version__,
        "schedulers": [info(s) for s in SCHEDULERS.values()],
        "optimizers": [info(o) for o in OPTIMIZERS.values()],
        "step_modes": [m.value for m in StepMode],
        "metric_shapes": list(METRIC_SHAPES),
        "expression": {
            "variable": safe_expr.VARIABLE,
            "functions": list(safe_expr.FUNCTIONS),
            "constants": list(safe_expr.CONSTANTS),
            "operators": ["+", "-", "*", "/", "**"],
        },
        "limits": {"max_steps": MAX_STEPS, "max_torch_steps": MAX_TORCH_STEPS, "max_groups": MAX_GROUPS},
    }


# ---------------------------------------------------------------------------------------------
# Request parsing (JSON -> typed spec); every error names its field
# ---------------------------------------------------------------------------------------------


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

    @property
    def scheduler_steps(self) -> int:
        return self.epochs if self.step is StepMode.EPOCH else self.epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def _bad(field_name: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"{field_name}: {reason}", field=field_name, reason=reason)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_range(info: ArgInfo, value: float, where: str) -> None:
    if not math.isfinite(value):
        raise _bad(where, "must be a finite number")
    lo, hi = info.minimum, info.maximum
    if lo is not None and (value < lo or (info.exclusive_minimum and value == lo)):
        op = ">" if info.exclusive_minimum else ">="
        raise _bad(where, f"must be {op} {lo:g}, got {value:g}")
    if hi is not None and (value > hi or (info.exclusive_maximum and value == hi)):
        op = "<" if info.exclusive_maximum else "<="
        raise _bad(where, f"must be {op} {hi:g}, got {value:g}")


MAX_INT = 10**9  # step counts beyond this are typos, and overflow numpy's int64 arithmetic


def _as_int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        raise _bad(where, f"must be an integer, got {v!r}")
    if abs(v) > MAX_INT:
        raise _bad(where, f"{v:g} is too large (the limit is {MAX_INT:g})")
    return int(v)


def _as_float(v: Any, where: str) -> float:
    if not _is_number(v):
        raise _bad(where, f"must be a number, got {v!r}")
    return float(v)


def _coerce(info: ArgInfo, value: Any, where: str, n_groups: int) -> Any:
    kind = info.kind
    if kind is ArgKind.INT:
        out = _as_int(value, where)
        _check_range(info, out, where)
        return out
    if kind is ArgKind.OPTIONAL_INT:
        if value is None:
            return None
        out = _as_int(value, where)
        _check_range(info, out, where)
        return out
    if kind is ArgKind.FLOAT:
        f = _as_float(value, where)
        _check_range(info, f, where)
        return f
    if kind is ArgKind.BOOL:
        if not isinstance(value, bool):
            raise _bad(where, f"must be true or false, got {value!r}")
        return value
    if kind is ArgKind.CHOICE:
        assert info.choices is not None
        if value not in info.choices:
            raise _bad(where, f"must be one of {', '.join(info.choices)}, got {value!r}")
        return value
    if kind is ArgKind.INT_LIST:
        if not isinstance(value, list):
            raise _bad(where, "must be a list of integers")
        ints = [_as_int(v, f"{where}[{i}]") for i, v in enumerate(value)]
        for i, v in enumerate(ints):
            _check_range(info, v, f"{where}[{i}]")
        for i in range(1, len(ints)):
            if ints[i] <= ints[i - 1]:
                raise _bad(where, f"must be strictly increasing, but {ints[i]} follows {ints[i - 1]}")
        return ints
    if kind is ArgKind.FLOAT_OR_LIST:
        if isinstance(value, list):
            if len(value) != n_groups:
                raise _bad(where, f"has {len(value)} values but there are {n_groups} param groups")
            vals = [_as_float(v, f"{where}[{i}]") for i, v in enumerate(value)]
            for i, fv in enumerate(vals):
                _check_range(info, fv, f"{where}[{i}]")
            return vals
        f = _as_float(value, where)
        _check_range(info, f, where)
        return f
    if kind is ArgKind.FLOAT_PAIR:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _bad(where, "must be a pair of numbers, e.g. [0.9, 0.999]")
        pair = tuple(_as_float(v, f"{where}[{i}]") for i, v in enumerate(value))
        for i, fv in enumerate(pair):
            _check_range(info, fv, f"{where}[{i}]")
        return pair
    if kind is ArgKind.EXPR:
        if isinstance(value, list):
            if len(value) != n_groups:
                raise _bad(where, f"has {len(value)} expressions but there are {n_groups} param groups")
            return [_parse_expr(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return _parse_expr(value, where)
    raise _bad(where, f"argument type {info.annotation} cannot be set from the lab")


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
        raise _bad(where, "compositions nest at most 4 deep")
    if not isinstance(raw, dict):
        raise _bad(where, 'must be an object like {"type": "StepLR", "args": {...}}')
    typ = raw.get("type")
    if not isinstance(typ, str) or typ not in SCHEDULERS:
        known = ", ".join(SCHEDULERS)
        raise _bad(f"{where}.type", f"unknown scheduler {typ!r}; known: {known}")
    info = SCHEDULERS[typ]
    args_raw = raw.get("args", {}) or {}
    if not isinstance(args_raw, dict):
        raise _bad(f"{where}.args", "must be an object")
    args: dict[str, Any] = {}
    children: list[SchedulerSpec] = []
    for name in args_raw:
        if info.arg(name) is None:
            known = ", ".join(a.name for a in info.args if a.kind is not ArgKind.UNSUPPORTED)
            raise _bad(f"{where}.args.{name}", f"{typ} has no argument {name!r}; it takes {known}")
    for a in info.args:
        awhere = f"{where}.args.{a.name}"
        if a.name not in args_raw:
            if a.required:
                raise _bad(awhere, f"{typ} needs {a.name!r}")
            continue
        value = args_raw[a.name]
        if a.kind is ArgKind.SCHEDULERS:
            if not isinstance(value, list) or not value:
                raise _bad(awhere, "must be a non-empty list of schedulers")
            children = [parse_scheduler(v, f"{awhere}[{i}]", n_groups, depth + 1) for i, v in enumerate(value)]
            for c in children:
                if c.info.needs_metrics:
                    raise _bad(c.field, f"{typ} cannot contain ReduceLROnPlateau (its step() needs a metric)")
            continue
        if a.kind is ArgKind.UNSUPPORTED:
            raise _bad(awhere, f"{a.name} ({a.annotation}) cannot be set from the lab")
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
            raise _bad(
                f"{w}.args.milestones",
                f"needs {len(spec.children) - 1} milestone(s) for {len(spec.children)} schedulers, got {len(ms)}",
            )
    if spec.type == "OneCycleLR" and "pct_start" in a:
        a["pct_start"] = float(a["pct_start"])  # torch insists on a float instance


def parse_request(body: Any, *, group_names: Sequence[str] | None = None, group_overrides: Sequence[dict[str, Any]] | None = None) -> PreviewSpec:
    """Validate a preview request. Model-based callers pass the resolved groups instead of ``groups``."""
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    opt_raw = body.get("optimizer", {"type": "SGD"})
    if not isinstance(opt_raw, dict):
        raise _bad("optimizer", 'must be an object like {"type": "SGD", "lr": 0.1}')
    otype = opt_raw.get("type", "SGD")
    if not isinstance(otype, str) or otype not in OPTIMIZERS:
        raise _bad("optimizer.type", f"unknown optimizer {otype!r}; known: {', '.join(OPTIMIZERS)}")
    oinfo = OPTIMIZERS[otype]
    opt_args = _parse_options(oinfo, {k: v for k, v in opt_raw.items() if k != "type"}, "optimizer")
    if group_overrides is None:
        groups_raw = body.get("groups", [{}])
        if groups_raw is None or groups_raw == []:
            groups_raw = [{}]
        if not isinstance(groups_raw, list):
            raise _bad("groups", "must be a list of objects ({} = optimizer defaults)")
        if len(groups_raw) > MAX_GROUPS:
            raise _bad("groups", f"has {len(groups_raw)} groups; the limit is {MAX_GROUPS}")
        overrides = []
        names = []
        for i, g in enumerate(groups_raw):
            if not isinstance(g, dict):
                raise _bad(f"groups[{i}]", "must be an object ({} = optimizer defaults)")
            names.append(str(g.get("name") or f"group{i}"))
            overrides.append(_parse_options(oinfo, {k: v for k, v in g.items() if k != "name"}, f"groups[{i}]"))
    else:
        overrides = [
            _parse_options(oinfo, dict(g), f"groups[{i}]") for i, g in enumerate(group_overrides)
        ]
        names = list(group_names or [f"group{i}" for i in range(len(overrides))])
    n_groups = len(overrides)
    epochs = _as_int(body.get("epochs", 10), "epochs")
    spe = _as_int(body.get("steps_per_epoch", 1), "steps_per_epoch")
    if epochs < 1:
        raise _bad("epochs", f"must be >= 1, got {epochs}")
    if spe < 1:
        raise _bad("steps_per_epoch", f"must be >= 1, got {spe}")
    if epochs * spe > MAX_STEPS:
        raise _bad("epochs", f"epochs * steps_per_epoch = {epochs * spe} is over the limit of {MAX_STEPS} steps")
    step_raw = body.get("step", "epoch")
    if not isinstance(step_raw, str) or step_raw not in {m.value for m in StepMode}:
        raise _bad("step", f'must be "epoch" or "batch", got {step_raw!r}')
    if "scheduler" not in body:
        raise _bad("scheduler", 'is required, e.g. {"type": "StepLR", "args": {"step_size": 10}}')
    sched = parse_scheduler(body["scheduler"], "scheduler", n_groups)
    metrics = _parse_metrics(body, epochs, spe, StepMode(step_raw)) if sched.info.needs_metrics else None
    max_points = body.get("max_points")
    if max_points is not None:
        max_points = _as_int(max_points, "max_points")
        if max_points < 2:
            raise _bad("max_points", "must be >= 2")
    overlay = body.get("overlay_batch_mistake", False)
    if not isinstance(overlay, bool):
        raise _bad("overlay_batch_mistake", "must be true or false")
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
    )


def _parse_options(info: OptimizerInfo, raw: dict[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for k, v in raw.items():
        a = info.arg(k)
        if a is None or a.kind is ArgKind.UNSUPPORTED:
            known = ", ".join(x.name for x in info.args if x.kind is not ArgKind.UNSUPPORTED)
            raise _bad(f"{where}.{k}", f"{info.name} has no option {k!r}; it takes {known}")
        out[k] = _coerce(a, v, f"{where}.{k}", 1)
    return out


# ---------------------------------------------------------------------------------------------
# Metric series for ReduceLROnPlateau
# ---------------------------------------------------------------------------------------------

METRIC_SHAPES = ("decrease", "plateau", "noisy", "increase")


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
        raise _bad("metric_shape", f"unknown shape {shape!r}; known: {', '.join(METRIC_SHAPES)}")
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
            raise _bad("metric_shape", f"must be one of {', '.join(METRIC_SHAPES)}")
        return tuple(synthetic_metrics(shape, n, _as_int(seed, "metric_seed")))
    if isinstance(raw, str):  # pasted text: numbers separated by commas, spaces or newlines
        parts = [p for p in re.split(r"[\s,;]+", raw.strip()) if p]
        try:
            raw = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _float_ok(p))
            raise _bad("metrics", f"{bad!r} is not a number") from None
    if not isinstance(raw, list) or not raw:
        raise _bad("metrics", "must be a non-empty list of numbers (one per scheduler step)")
    vals = []
    for i, v in enumerate(raw):
        f = _as_float(v, f"metrics[{i}]")
        if not math.isfinite(f):
            raise _bad(f"metrics[{i}]", "must be finite")
        vals.append(f)
    return tuple(vals)


def _float_ok(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Building real torch objects
# ---------------------------------------------------------------------------------------------


def _torch_kwargs(spec: SchedulerSpec, ctx_steps: int) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for k, v in spec.args.items():
        if isinstance(v, safe_expr.Expr):
            kw[k] = v.__call__
        elif isinstance(v, list) and v and isinstance(v[0], safe_expr.Expr):
            kw[k] = [e.__call__ for e in v]
        else:
            kw[k] = list(v) if isinstance(v, list) else v
    if spec.type == "OneCycleLR" and kw.get("total_steps") is None and not (kw.get("epochs") and kw.get("steps_per_epoch")):
        kw["total_steps"] = ctx_steps
    return kw


def build_optimizer(spec: PreviewSpec, params: Sequence[Sequence[torch.Tensor]] | None = None) -> torch.optim.Optimizer:
    """The real optimizer: one group per entry, with a placeholder tensor when no model is given."""
    cls = getattr(torch.optim, spec.optimizer.type)
    if params is None:
        params = [[torch.zeros(1, requires_grad=True)] for _ in spec.groups]
    groups = [{"params": list(p), **o} for p, o in zip(params, spec.groups, strict=True)]
    try:
        return cls(groups, **spec.optimizer.args)  # type: ignore[no-any-return]
    except (ValueError, TypeError) as err:
        raise InvalidRequest(f"optimizer: torch rejects it: {err}", field="optimizer", reason=str(err)) from None


def build_scheduler(spec: SchedulerSpec, optimizer: torch.optim.Optimizer, ctx_steps: int) -> Any:
    """The real torch scheduler for ``spec`` (compositions built bottom-up, as one writes them)."""
    cls = getattr(lrs, spec.type)
    kw = _torch_kwargs(spec, ctx_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if spec.children:
                kids = [build_scheduler(c, optimizer, ctx_steps) for c in spec.children]
                if spec.type == "ChainedScheduler":
                    return cls(kids, optimizer=optimizer, **kw)
                return cls(optimizer, schedulers=kids, **kw)
            return cls(optimizer, **kw)
        except InvalidRequest:
            raise
        except (ValueError, TypeError, ZeroDivisionError, KeyError, OverflowError) as err:
            raise InvalidRequest(
                f"{spec.field}: torch rejects {spec.type}: {err}", field=spec.field, reason=str(err)
            ) from None


def _momentum_of(group: dict[str, Any], key: str | None) -> float | None:
    if key is None:
        return None
    v = group.get(key)
    if key == "betas" and v is not None:
        v = v[0]
    return None if v is None else float(v)


# ---------------------------------------------------------------------------------------------
# Series computation
# ---------------------------------------------------------------------------------------------


@dataclass
class Series:
    """Values after scheduler step k (k = 0: after construction) for each group."""

    lr: np.ndarray  # (G, n), NaN after a crash
    momentum: np.ndarray | None  # (G, n) or None when the optimizer has no momentum
    crash: str | None = None  # torch's error when it stops stepping
    crash_at: int | None = None  # scheduler step index at which torch raised
    engine: str = "exact"


def step_torch(sched: Any, optimizer: torch.optim.Optimizer, n: int, momentum_key: str | None,
               metrics: Sequence[float] | None = None) -> Series:
    """Step the real scheduler; entry k is ``get_last_lr()`` after k steps. One extra final step detects a crash."""
    g = len(optimizer.param_groups)
    out = Series(
        lr=np.full((g, n), np.nan),
        momentum=None if momentum_key is None else np.full((g, n), np.nan),
        engine="torch",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n + 1):
            if k > 0:
                try:
                    if metrics is not None:
                        sched.step(metrics[min(k - 1, len(metrics) - 1)])
                    else:
                        sched.step()
                except Exception as err:  # torch raised in step(): the training loop would stop here
                    msg = str(err) or _KNOWN_CRASHES.get(type(err).__name__, "")
                    out.crash, out.crash_at = f"{type(err).__name__}: {msg}", k
                    break
            if k == n:
                break
            out.lr[:, k] = [float(v) for v in sched.get_last_lr()]
            if out.momentum is not None:
                out.momentum[:, k] = [_momentum_of(gr, momentum_key) for gr in optimizer.param_groups]
    return out


_KNOWN_CRASHES = {
    # SequentialLR hands over with _update_lr(0), which calls get_lr(); composites have none.
    "NotImplementedError": "SequentialLR cannot hand over to a ChainedScheduler/SequentialLR (it has no get_lr())",
}

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
            raise _NotReplayable  # per-group factors: the shared-factor trick does not apply
        if n > 1:
            r[1:] = safe_expr.evaluate_array(exprs, k[1:].astype(np.float64))
    else:  # pragma: no cover - guarded by callers
        raise _NotReplayable
    return r


class _NotReplayable(Exception):
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
    raise _NotReplayable


def _leaf(spec: SchedulerSpec, base: np.ndarray, v0: np.ndarray | None, n: int,
          momentum: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int | None, str | None]:
    """Values for local steps 0..n-1 of one scheduler. ``v0``: value at local step 0 when it is
    handed over mid-way (SequentialLR), else None for a freshly constructed scheduler on ``base``.
    Returns (lr, momentum or None if unchanged, crash step or None, crash message)."""
    g = base.shape[0]
    t, a = spec.type, spec.args
    if t in _MULTIPLICATIVE:
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
    raise _NotReplayable


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
    if spec.type in _REPLAY_LEAVES:
        return _leaf(spec, base, None, n, None)
    if spec.type == "ChainedScheduler":
        kids = spec.children
        if not all(c.type in _MULTIPLICATIVE for c in kids):
            raise _NotReplayable
        f = np.stack([_factors(c, n) for c in kids])  # (C, n)
        # Each step every child multiplies in turn: one long cumprod, read every C-th value.
        seq = f.T.ravel()
        cnum = len(kids)
        lr = np.stack([np.cumprod(np.concatenate(([b], seq)))[cnum::cnum] for b in base.tolist()])
        return lr, None, None, None
    if spec.type == "SequentialLR":
        kids = spec.children
        safe = _MULTIPLICATIVE | {"CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts"}
        if not all(c.type in safe and not c.children for c in kids):
            raise _NotReplayable  # CyclicLR/OneCycleLR rewrite initial_lr/momentum when built
        if any(c.type == "MultiplicativeLR" and isinstance(c.args["lr_lambda"], list) for c in kids):
            raise _NotReplayable
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
    raise _NotReplayable


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
    raise _NotReplayable


# ---------------------------------------------------------------------------------------------
# The preview
# ---------------------------------------------------------------------------------------------


@dataclass
class GroupSeries:
    name: str
    lr: np.ndarray  # one value per optimizer step (NaN: torch raised before this step)
    momentum: np.ndarray | None
    initial_lr: float
    params: list[str] | None = None
    count: int | None = None


def _b64(a: np.ndarray) -> dict[str, str]:
    # Plotly.js's own typed-array form; exact (the float64 bits) and ~100x faster than JSON numbers.
    return {"dtype": "f8", "bdata": base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode()}


def _encode(a: np.ndarray, encoding: str) -> Any:
    if encoding == "raw":  # arrays kept for dumps()
        return a
    return _b64(a) if encoding == "b64" else _tolist(a)


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

    def to_dict(self, encoding: str = "json") -> dict[str, Any]:
        """The API answer. ``encoding="b64"`` sends each series as base64 float64 (the page uses it)."""

        def gs(g: GroupSeries) -> dict[str, Any]:
            d: dict[str, Any] = {
                "name": g.name,
                "lr": _encode(g.lr, encoding),
                "momentum": None if g.momentum is None else _encode(g.momentum, encoding),
                "initial_lr": g.initial_lr,
            }
            if g.params is not None:
                d["params"], d["count"] = g.params, g.count
            return d

        out: dict[str, Any] = {
            "x": _b64(self.x.astype(np.float64)) if encoding == "b64" else _encode(self.x, encoding),
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
        if self.mistake is not None:
            out["mistake"] = {"groups": [gs(g) for g in self.mistake]}
        if self.membership is not None:
            out["membership"] = self.membership
        return out


def compute_series(spec: PreviewSpec, n: int, params: Sequence[Sequence[torch.Tensor]] | None = None,
                   *, use_replay: bool = True) -> tuple[Series, torch.optim.Optimizer]:
    """Scheduler-step series of length ``n``: replayed (cross-checked against torch) or stepped."""
    opt = build_optimizer(spec, params)
    mkey = spec.optimizer.info.momentum_key
    base_lrs = np.array([float(g["lr"]) for g in opt.param_groups])
    base_mom = [_momentum_of(g, mkey) for g in opt.param_groups]
    sched = build_scheduler(spec.scheduler, opt, n)
    if spec.metrics is not None or not use_replay:
        if n > MAX_TORCH_STEPS:
            raise _bad("epochs", f"this schedule is computed by stepping torch; {n} scheduler steps is over "
                                 f"the limit of {MAX_TORCH_STEPS}")
        return step_torch(sched, opt, n, mkey, spec.metrics), opt
    try:
        with np.errstate(over="ignore"):  # an overflowing lr is inf, as in torch; warned in _teach
            lr, mom, crash_at, crash_msg = replay(spec.scheduler, base_lrs, n)
    except _NotReplayable:
        if n > MAX_TORCH_STEPS:
            raise _bad("epochs", f"this composition is computed by stepping torch; {n} scheduler steps is over "
                                 f"the limit of {MAX_TORCH_STEPS}") from None
        return step_torch(sched, opt, n, mkey), opt
    if mkey is None:
        momentum = None
    elif mom is None:
        momentum = np.repeat(np.array(base_mom, dtype=np.float64)[:, None], n, axis=1)
    else:
        momentum = mom
    series = Series(lr=lr, momentum=momentum, crash=crash_msg, crash_at=crash_at, engine="exact")
    # Cross-check the first steps against the real torch object; on any difference, trust torch.
    m = min(n, CROSS_CHECK_STEPS)
    check = step_torch(sched, opt, m, mkey)
    ok = _close(check.lr, lr[:, :m]) and (momentum is None or _close(check.momentum, momentum[:, :m]))
    if not ok:  # pragma: no cover - would be a replay bug or a new torch behaviour
        if n > MAX_TORCH_STEPS:
            raise _bad("epochs", f"{n} scheduler steps is over the limit of {MAX_TORCH_STEPS} for stepping torch")
        opt = build_optimizer(spec, params)
        sched = build_scheduler(spec.scheduler, opt, n)
        return step_torch(sched, opt, n, mkey), opt
    return series, opt


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


def _tolist(a: np.ndarray) -> list[float | None]:
    out: list[float | None] = a.tolist()
    if not np.isfinite(a).all():
        # NaN: torch raised before this step; inf: the lr overflowed. JSON has neither.
        out = [v if v is not None and math.isfinite(v) else None for v in out]
    return out


def _json_array(a: np.ndarray) -> str:
    """A JSON array of ``a``: ``repr`` of each float (exact round trip), non-finite as null.

    Runs of equal values (per-epoch stepping, constant momentum) are rendered once and
    repeated: far faster than ``json.dumps`` on a list, with the same text.
    """
    if a.dtype.kind in "iu":
        return "[" + ",".join(map(str, a.tolist())) + "]"
    n = a.size
    if n == 0:
        return "[]"

    def text(v: float) -> str:
        return repr(v) if math.isfinite(v) else "null"

    cuts = np.flatnonzero(a[1:] != a[:-1]) + 1
    if cuts.size * 4 < n:
        bounds = [0, *cuts.tolist(), n]
        vals = a[bounds[:-1]].tolist()
        return "[" + ",".join(",".join([text(v)] * (e - b)) for v, b, e in zip(vals, bounds[:-1], bounds[1:], strict=True)) + "]"
    return "[" + ",".join([text(v) for v in a.tolist()]) + "]"


def dumps(data: Any) -> str:
    """``json.dumps`` for a preview answer whose series are numpy arrays (see ``Preview.to_dict("raw")``)."""
    arrays: list[np.ndarray] = []

    def swap(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            arrays.append(obj)
            return f"\x00{len(arrays) - 1}\x00"
        if isinstance(obj, dict):
            return {k: swap(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [swap(v) for v in obj]
        return obj

    skeleton = json.dumps(swap(data), separators=(",", ":"), allow_nan=False)  # small: arrays are placeholders
    return _PLACEHOLDER.sub(lambda m: _json_array(arrays[int(m.group(1))]), skeleton)


_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')


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
    codes, texts = _teach(spec, series, opt)
    mistake = None
    if spec.overlay_batch_mistake and spec.step is StepMode.EPOCH and spec.steps_per_epoch > 1:
        wrong = PreviewSpec(**{**spec.__dict__, "step": StepMode.BATCH, "overlay_batch_mistake": False})
        try:
            ms, _ = compute_series(wrong, wrong.scheduler_steps, params)
        except InvalidRequest as err:
            codes.append("overlay-unavailable")
            texts.append(f"The per-batch overlay could not be computed: {err.message}")
        else:
            mlr, mmom = ms.lr, ms.momentum
            if idx is not None:
                mlr = mlr[:, idx]
                mmom = None if mmom is None else mmom[:, idx]
            mistake = [
                GroupSeries(name=spec.group_names[i], lr=mlr[i],
                            momentum=None if mmom is None else mmom[i], initial_lr=initial[i])
                for i in range(mlr.shape[0])
            ]
            codes.append("overlay-batch-mistake")
            texts.append(
                f"Overlay: the same {spec.scheduler.type} stepped once per batch by mistake ({total} scheduler steps "
                f"instead of {spec.epochs}); every step-count argument then counts batches, not epochs."
            )
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
    )


def _walk(spec: SchedulerSpec) -> list[SchedulerSpec]:
    out = [spec]
    for c in spec.children:
        out.extend(_walk(c))
    return out


def _teach(spec: PreviewSpec, series: Series, opt: torch.optim.Optimizer) -> tuple[list[str], list[str]]:
    """Warnings that explain a pitfall, each with a stable code for tests and the page."""
    codes: list[str] = []
    texts: list[str] = []

    def warn(code: str, text: str) -> None:
        codes.append(code)
        texts.append(text)

    unit = "epoch" if spec.step is StepMode.EPOCH else "batch"
    oname = spec.optimizer.type
    mkey = spec.optimizer.info.momentum_key
    for s in _walk(spec.scheduler):
        a = s.args
        if s.type in _MOMENTUM_SCHEDULERS and a.get("cycle_momentum", True):
            what = "betas[0]" if mkey == "betas" else "momentum"
            lo = a.get("base_momentum", 0.8 if s.type == "CyclicLR" else 0.85)
            hi = a.get("max_momentum", 0.9 if s.type == "CyclicLR" else 0.95)
            text = (f"{s.type} also cycles the optimizer's {what} between {lo} and {hi} (cycle_momentum=True), "
                    f"overriding the {what} you set.")
            set_m = [g.get("momentum", spec.optimizer.args.get("momentum", 0.0)) for g in spec.groups]
            if oname == "SGD" and any(float(m) == 0.0 for m in set_m):
                text += (" Your SGD has momentum=0: CyclicLR/OneCycleLR silently turn momentum ON. Pass "
                         "cycle_momentum=False to keep plain SGD.")
            warn("momentum-cycled", text)
        if s.type == "CyclicLR":
            warn("cyclic-overrides-lr", "CyclicLR replaces each group's lr with base_lr when it is built; "
                                        "the optimizer's lr is ignored.")
        if s.type == "OneCycleLR":
            warn("onecycle-overrides-lr", "OneCycleLR starts at max_lr / div_factor whatever lr the optimizer has.")
            if "total_steps" not in a and not (a.get("epochs") and a.get("steps_per_epoch")):
                warn("onecycle-total-steps", f"OneCycleLR total_steps not given: using {series.lr.shape[1]}, the "
                                             "number of scheduler steps in this preview.")
        if s.type == "CosineAnnealingLR" and a["T_max"] < spec.scheduler_steps - 1 and s is spec.scheduler:
            warn("cosine-rises", f"CosineAnnealingLR's T_max={a['T_max']} is shorter than the {spec.scheduler_steps} "
                                 "scheduler steps: after T_max the lr climbs back up (T_max is half a period, not "
                                 "a length). Use T_max = total steps, or CosineAnnealingWarmRestarts for restarts.")
        if s.type in {"StepLR", "MultiStepLR", "ExponentialLR"} and a.get("gamma", 0.1) > 1:
            warn("gamma-grows", f"{s.type} gamma={a['gamma']} > 1 makes the lr grow.")
    info = spec.scheduler.info
    if spec.step is StepMode.BATCH and info.intent is Intent.EPOCH and spec.steps_per_epoch > 1:
        warn("epoch-schedule-per-batch",
             f"{spec.scheduler.type} is usually stepped once per epoch. Stepping it per batch means its step "
             f"counts ({_count_args(spec.scheduler)}) are in batches: with {spec.steps_per_epoch} batches per epoch "
             "it runs that many times faster.")
    if spec.step is StepMode.EPOCH and info.intent is Intent.BATCH and spec.steps_per_epoch > 1:
        warn("batch-schedule-per-epoch",
             f"{spec.scheduler.type} is meant to be stepped after every batch (optimizer.step()); stepped per epoch "
             "it barely moves.")
    if spec.scheduler.type == "SequentialLR":
        ms = spec.scheduler.args["milestones"]
        lr = series.lr
        for m in ms:
            if 0 < m < lr.shape[1]:
                before, after = lr[:, m - 1], lr[:, m]
                jump = np.abs(after - before)
                rel = jump / np.maximum(np.abs(before), 1e-300)
                if np.isnan(rel).all():
                    continue  # torch raised before this milestone
                # A warm-up that hands over at its own pace (LinearLR reaching the base lr exactly
                # at the milestone) is no jump: compare with the steps on either side.
                neighbours = [np.abs(lr[:, k + 1] - lr[:, k]) for k in (m - 2, m) if k >= 0 and k + 1 < lr.shape[1]]
                usual = np.nanmax(np.stack(neighbours), axis=0) if neighbours else np.zeros_like(jump)
                rel = np.where(jump > 2 * usual + 1e-15, rel, 0.0)
                if np.nanmax(rel) > 0.05:
                    i = int(np.nanargmax(rel))
                    warn("sequential-jump",
                         f"SequentialLR jumps at {unit} {m}: group {spec.group_names[i]!r} goes from "
                         f"{before[i]:.6g} to {after[i]:.6g}. The next scheduler starts from the initial lr, not "
                         "from where the previous one ended.")
    if series.crash is not None:
        step_no = series.crash_at
        warn("stepped-past-end",
             f"torch raises at scheduler.step() number {step_no}: {series.crash}. The values after that are null. "
             "For OneCycleLR set total_steps to epochs * steps_per_epoch and step it per batch.")
    lr = series.lr
    if np.isinf(lr).any():
        warn("lr-overflow", "The learning rate overflows to infinity (shown as null): a factor above 1 compounds.")
    finite = lr[np.isfinite(lr)]
    if finite.size and finite.min() < 0:
        warn("negative-lr", "The learning rate becomes negative: torch optimizers reject negative lrs at build "
                            "time but not when a scheduler sets them.")
    if spec.metrics is not None and len(spec.metrics) < spec.scheduler_steps - 1:
        warn("metrics-short", f"{len(spec.metrics)} metric values for {spec.scheduler_steps} scheduler steps: "
                              "the last value is repeated.")
    del opt
    return codes, texts


def _count_args(spec: SchedulerSpec) -> str:
    names = [a.name for a in spec.info.args if a.kind in (ArgKind.INT, ArgKind.INT_LIST, ArgKind.OPTIONAL_INT)]
    return ", ".join(names) or "its step count"


# ---------------------------------------------------------------------------------------------
# Model-based preview
# ---------------------------------------------------------------------------------------------


def model_preview(body: Any, model: nn.Module) -> Preview:
    """Preview with param groups from a served model (``groups`` hold ``match`` patterns)."""
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
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


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def _py(v: Any) -> str:
    if isinstance(v, safe_expr.Expr):
        return f"lambda epoch: {v.to_python()}"
    if isinstance(v, list) and v and isinstance(v[0], safe_expr.Expr):
        return "[" + ", ".join(_py(e) for e in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    return repr(v)


def _sched_code(spec: SchedulerSpec, ctx_steps: int, indent: str = "") -> str:
    kw = dict(spec.args)
    if spec.type == "OneCycleLR" and kw.get("total_steps") is None and not (kw.get("epochs") and kw.get("steps_per_epoch")):
        kw["total_steps"] = ctx_steps
    args = ", ".join(f"{k}={_py(v)}" for k, v in kw.items())
    if spec.children:
        inner = indent + "    "
        kids = ",\n".join(inner + "    " + _sched_code(c, ctx_steps, inner + "    ") for c in spec.children)
        lst = f"[\n{kids},\n{inner}]"
        if spec.type == "ChainedScheduler":
            return f"lr_scheduler.ChainedScheduler({lst}, optimizer=optimizer{', ' + args if args else ''})"
        return f"lr_scheduler.{spec.type}(\n{inner}optimizer,\n{inner}schedulers={lst},\n{inner}{args},\n{indent})"
    return f"lr_scheduler.{spec.type}(optimizer{', ' + args if args else ''})"


def snippet(spec: PreviewSpec, param_names: Sequence[Sequence[str]] | None = None) -> str:
    """Python that builds exactly this optimizer and scheduler, with the training-loop skeleton."""
    lines = ["import math", "", "import torch", "from torch.optim import lr_scheduler", ""]
    if param_names is None:
        lines += ["# One placeholder parameter per group; use your model's parameters instead."]
        lines += [f"params = [torch.nn.Parameter(torch.zeros(1)) for _ in range({len(spec.groups)})]", ""]
        grp = [f"    {{\"params\": [params[{i}]]" + "".join(f", {k!r}: {_py(v)}" for k, v in g.items()) + "},"
               for i, g in enumerate(spec.groups)]
    else:
        lines += ["model = ...  # your model", "named = dict(model.named_parameters())", ""]
        grp = []
        for i, (g, names) in enumerate(zip(spec.groups, param_names, strict=True)):
            opts = "".join(f", {k!r}: {_py(v)}" for k, v in g.items())
            lst = ", ".join(repr(n) for n in names)
            grp.append(f"    # {spec.group_names[i]}: {len(names)} parameter(s)")
            grp.append(f"    {{\"params\": [named[n] for n in [{lst}]]{opts}}},")
    oargs = "".join(f", {k}={_py(v)}" for k, v in spec.optimizer.args.items())
    lines += [f"optimizer = torch.optim.{spec.optimizer.type}([", *grp, f"]{oargs})"]
    n = spec.scheduler_steps
    lines += [f"scheduler = {_sched_code(spec.scheduler, n)}", ""]
    per_batch = spec.step is StepMode.BATCH
    metric = spec.scheduler.info.needs_metrics
    step_call = "scheduler.step(val_loss)" if metric else "scheduler.step()"
    lines += [
        f"for epoch in range({spec.epochs}):",
        f"    for batch in range({spec.steps_per_epoch}):  # for batch in loader:",
        "        optimizer.zero_grad()",
        "        # loss = criterion(model(inputs), targets); loss.backward()",
        "        optimizer.step()",
    ]
    if per_batch:
        lines += [f"        {step_call}  # per batch, after optimizer.step()"]
    else:
        if metric:
            lines += ["    val_loss = ...  # validation metric for this epoch"]
        lines += [f"    {step_call}  # once per epoch, after the last batch"]
    return "\n".join(lines) + "\n"


def csv_text(result: Preview) -> str:
    """CSV of the curves: step, epoch, then lr (and momentum) per group."""
    cols = ["step", "epoch"]
    for g in result.groups:
        cols.append(f"{g.name}_lr")
        if g.momentum is not None:
            cols.append(f"{g.name}_momentum")
    rows = [",".join(cols)]
    spe = result.steps_per_epoch
    columns: list[list[Any]] = [result.x.tolist(), (result.x / spe).tolist()]
    for g in result.groups:
        columns.append(_tolist(g.lr))
        if g.momentum is not None:
            columns.append(_tolist(g.momentum))
    for row in zip(*columns, strict=True):
        rows.append(",".join("" if v is None else repr(v) for v in row))
    return "\n".join(rows) + "\n"


__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "ArgKind",
    "Intent",
    "Preview",
    "PreviewSpec",
    "SchedulerSpec",
    "StepMode",
    "build_optimizer",
    "build_scheduler",
    "catalogue",
    "closed_form",
    "compute_series",
    "csv_text",
    "model_preview",
    "parse_request",
    "preview",
    "replay",
    "snippet",
    "step_torch",
    "synthetic_metrics",
]
