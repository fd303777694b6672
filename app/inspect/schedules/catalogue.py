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
from torchscope.inspect.schedules.overrides import (
    EXTRA_SCHEDULERS,
    OPTIMIZER_ARG_OVERRIDES,
    OPTIMIZER_OVERRIDES,
    OVERRIDES,
)

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
    increasing: bool = False  # an int list that must be strictly increasing


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


# Implementation switches that change nothing about the schedule.
_HIDDEN_OPTIMIZER_ARGS = {"params", "foreach", "fused", "capturable", "differentiable", "maximize"}
_HIDDEN_SCHEDULER_ARGS = {"optimizer", "last_epoch", "verbose"}
# Changing momentum each step: the teaching warning keys off this.
MOMENTUM_SCHEDULERS = {"CyclicLR", "OneCycleLR"}
# Schedulers stepped by hand next to another one in the SWA loop of torch's docs.
SWA_SCHEDULERS = {"SWALR"}
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
    pair = re.fullmatch(r"tuple\[(float[^,\]]*),(float[^,\]]*)\]", ann)
    if pair and "None" not in ann:  # (0.9, 0.999); not Adafactor's (None, 1e-3) nor Muon's 3 coefficients
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


def _annotation(p: inspect.Parameter) -> str:
    if p.annotation is inspect.Parameter.empty:
        # Unannotated (SWALR's anneal_epochs=10): the default's type says what torch expects.
        d = p.default
        return type(d).__name__ if isinstance(d, bool | int | float) else "unknown"
    return p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)


def _args_from_signature(
    cls: type, hidden: set[str], overrides: dict[str, dict[str, Any]]
) -> tuple[ArgInfo, ...]:
    sig = inspect.signature(cls)
    out = []
    for p in sig.parameters.values():
        if p.name in hidden or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = _annotation(p)
        kind, choices, per_group = _kind_of(ann, p.name)
        fields: dict[str, Any] = {
            "name": p.name,
            "annotation": ann,
            "kind": kind,
            "required": p.default is inspect.Parameter.empty,
            "default": _json_default(p.default),
            "choices": choices,
            "per_group": per_group,
            **overrides.get(p.name, {}),
        }
        fields["kind"] = ArgKind(fields["kind"])
        out.append(ArgInfo(**fields))
    return tuple(out)


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _abstract_names() -> set[str]:
    return {n for n in lrs.__all__ if n in {"LRScheduler", "_LRScheduler"} or inspect.isabstract(getattr(lrs, n))}


def scheduler_class(name: str) -> type:
    """The torch class for a catalogue name (lr_scheduler's, or swa_utils.SWALR)."""
    module = EXTRA_SCHEDULERS.get(name, lrs)
    cls: type = getattr(module, name)
    return cls


def _build_catalogue() -> dict[str, SchedulerInfo]:
    out: dict[str, SchedulerInfo] = {}
    abstract = _abstract_names()
    for name in [*lrs.__all__, *EXTRA_SCHEDULERS]:
        cls = getattr(EXTRA_SCHEDULERS.get(name, lrs), name, None)
        if name in abstract or not isinstance(cls, type):
            continue
        over = OVERRIDES.get(name, {})
        args = _args_from_signature(cls, _HIDDEN_SCHEDULER_ARGS, over.get("args", {}))
        out[name] = SchedulerInfo(
            name=name,
            doc=_first_line(cls),
            intent=Intent(over.get("intent", Intent.EITHER)),
            args=args,
            composite=any(a.kind is ArgKind.SCHEDULERS for a in args),
            needs_metrics="metrics" in inspect.signature(getattr(cls, "step")).parameters,  # noqa: B009
            changes_momentum=name in MOMENTUM_SCHEDULERS,
            replay=name in REPLAY_LEAVES or name in {"SequentialLR", "ChainedScheduler"},
        )
    return out


def _optimizer_classes() -> list[tuple[str, type]]:
    """Every optimizer class ``torch.optim`` exports (SGD first: the lab's default)."""
    found = [
        (n, c) for n in torch.optim.__all__
        if isinstance(c := getattr(torch.optim, n, None), type)
        and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer
    ]
    return sorted(found, key=lambda nc: (nc[0] != "SGD", nc[0].lower()))


def _build_optimizers() -> dict[str, OptimizerInfo]:
    out = {}
    for name, cls in _optimizer_classes():
        overrides = {**OPTIMIZER_OVERRIDES, **OPTIMIZER_ARG_OVERRIDES.get(name, {})}
        args = _args_from_signature(cls, _HIDDEN_OPTIMIZER_ARGS, overrides)
        names = {a.name for a in args}
        # What CyclicLR/OneCycleLR cycle, and what the chart plots: betas[0] or momentum.
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
            "operators": safe_expr.OPERATORS,
        },
        "limits": {"max_steps": MAX_STEPS, "max_torch_steps": MAX_TORCH_STEPS, "max_groups": MAX_GROUPS},
    }
