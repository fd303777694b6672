"""The scheduler and optimizer catalogue, read from torch with ``inspect.signature``.

``OVERRIDES`` adds what a signature cannot say (ranges, per-batch vs per-epoch intent).
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import torch
from torch.optim import lr_scheduler as lrs

from torchscope.inspect import safe_expr

MAX_STEPS = 1_000_000  # optimizer steps in one preview (exact engine)
MAX_TORCH_STEPS = 300_000  # scheduler steps when we must step torch itself
MAX_GROUPS = 64
MAX_INT = 10**9  # step counts beyond this are typos, and overflow numpy's int64 arithmetic
METRIC_SHAPES = ("decrease", "plateau", "noisy", "increase")  # synthetic metrics for ReduceLROnPlateau


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
MOMENTUM_SCHEDULERS = {"CyclicLR", "OneCycleLR"}
# Schedulers the numpy replay reproduces exactly (see the module docstring).
MULTIPLICATIVE = {"StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "MultiplicativeLR"}
REPLAY_LEAVES = MULTIPLICATIVE | {"CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"}


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
            changes_momentum=name in MOMENTUM_SCHEDULERS,
            replay=name in REPLAY_LEAVES or name in {"SequentialLR", "ChainedScheduler"},
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
