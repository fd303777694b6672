"""Resume: a checkpointed scheduler continued for N more steps ("what will my LR be when I resume?").

A training loop resumes by building its optimizer and scheduler, then
``optimizer.load_state_dict(...)`` and ``scheduler.load_state_dict(...)``. We do the same
with real torch objects: the scheduler's class is recognised from its state_dict's keys,
built, then given the saved optimizer hyperparameters (``lr``, ``initial_lr``, OneCycleLR's
``max_lr``/``min_lr``, SWALR's ``swa_lr``...) and the saved scheduler state, and stepped.
Entry 0 is the lr the resumed run's next ``optimizer.step()`` uses; entry k follows k more
``scheduler.step()`` calls. The state is untrusted input: every key and value is checked
against what the recognised class itself saves before it reaches ``load_state_dict``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from torchscope.inspect import safe_expr
from torchscope.inspect.checkpoints import Checkpoint
from torchscope.inspect.checkpoints.schedulers import optimizer_for
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules import resume_state
from torchscope.inspect.schedules.budget import check_work
from torchscope.inspect.schedules.catalogue import (
    MAX_GROUPS,
    MAX_TORCH_STEPS,
    SCHEDULERS,
    scheduler_class,
)
from torchscope.inspect.schedules.encoding import b64, encode
from torchscope.inspect.schedules.resume_state import bad, number
from torchscope.inspect.schedules.stepping import step_torch

# Keys every LRScheduler saves (some only in some torch releases).
_COMMON = {"base_lrs", "last_epoch", "_step_count", "_is_initial", "_get_lr_called_within_step", "_last_lr", "verbose"}
# Saved only with some arguments (cycle_momentum=False drops them).
_OPTIONAL = {"base_momentums", "max_momentums", "use_beta1"}
_LAMBDAS = {"LambdaLR", "MultiplicativeLR"}
# Optimizer hyperparameters schedulers read or write, copied from the checkpoint's param_groups.
GROUP_KEYS = ("lr", "initial_lr", "momentum", "betas", "max_lr", "min_lr", "max_momentum", "base_momentum", "swa_lr")
MAX_DEPTH = 4


@functools.cache
def _probes() -> dict[str, dict[str, Any]]:
    """Each scheduler's own state_dict, from a real instance: what a saved state of that class looks like."""
    out: dict[str, dict[str, Any]] = {}
    special: dict[str, dict[str, Any]] = {
        "OneCycleLR": {"max_lr": 0.1, "total_steps": 100},
        "LambdaLR": {"lr_lambda": lambda e: 1.0},
        "MultiplicativeLR": {"lr_lambda": lambda e: 1.0},
    }
    for name, info in SCHEDULERS.items():
        if info.composite or info.needs_metrics:
            continue
        kw = special.get(name) or {a.name: a.example for a in info.args if a.required}
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = scheduler_class(name)(opt, **kw).state_dict()
    return out


def identify(state: Mapping[str, Any]) -> list[str]:
    """Scheduler classes that save exactly these keys (LambdaLR and MultiplicativeLR look alike)."""
    keys = set(state)
    if "_schedulers" in keys:
        return ["SequentialLR"] if "_milestones" in keys else ["ChainedScheduler"]
    own = keys - _COMMON
    fits: list[tuple[int, bool, str]] = []
    for name, probe in _probes().items():
        spec = set(probe) - _COMMON
        if (spec - _OPTIONAL) <= own:  # every key the class always saves is there
            fits.append((len(own & spec), own <= spec, name))
    if not fits:
        return []
    # Exactly its keys; else the class explaining most of them (the rest is refused by name in clean()).
    exact = [name for _, ok, name in fits if ok]
    if exact:
        return exact
    best = max(n for n, _, _ in fits)
    return [name for n, _, name in fits if n == best]


@dataclass
class Resumed:
    type: str
    candidates: list[str]
    last_epoch: int
    lr: np.ndarray  # (G, steps + 1)
    momentum: np.ndarray | None
    momentum_key: str | None
    crash_at: int | None
    crash: str | None
    groups_from: str
    warnings: list[str] = field(default_factory=list)
    warning_codes: list[str] = field(default_factory=list)

    def to_dict(self, encoding: str = "json") -> dict[str, Any]:
        n = self.lr.shape[1]
        x = np.arange(self.last_epoch, self.last_epoch + n, dtype=np.int64)
        return {
            "type": self.type,
            "candidates": self.candidates,
            "last_epoch": self.last_epoch,
            "x": b64(x.astype(np.float64)) if encoding == "b64" else encode(x, encoding),
            "groups": [
                {"name": f"group{i}", "lr": encode(self.lr[i], encoding),
                 "momentum": None if self.momentum is None else encode(self.momentum[i], encoding)}
                for i in range(self.lr.shape[0])
            ],
            "steps": n - 1,
            "momentum_key": self.momentum_key,
            "crash_at": self.crash_at,
            "crash": self.crash,
            "groups_from": self.groups_from,
            "warnings": self.warnings,
            "warning_codes": self.warning_codes,
            "engine": "torch",
            "encoding": "json" if encoding == "raw" else encoding,
        }


def resume(state: Any, *, steps: int, scheduler_type: str | None = None, lr_lambda: Any = None,
           optimizer_groups: Sequence[Mapping[str, Any]] | None = None) -> Resumed:
    """Continue the scheduler saved in ``state`` for ``steps`` more ``scheduler.step()`` calls."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_TORCH_STEPS:
        raise bad("steps", f"must be an integer from 1 to {MAX_TORCH_STEPS}, got {steps!r}")
    if not isinstance(state, Mapping) or not state:
        raise bad("state", "must be a scheduler's state_dict (an object)")
    typ, candidates = _choose(state, scheduler_type, "state")
    n_groups = _n_groups(state)
    check_work(steps, n_groups, _state_count(state), field="steps")
    groups = _group_values(state, optimizer_groups, n_groups)
    missing = [k for k in _needs_groups(typ, state) if any(k not in g for g in groups)]
    if missing:
        raise bad("optimizer.param_groups", f"{typ} keeps {', '.join(missing)} in the optimizer's param_groups, not in "
                                            "its own state: resume from a checkpoint that also holds the optimizer state")
    momentum_key = "betas" if any("betas" in g for g in groups) else "momentum"
    opt = _optimizer(groups, momentum_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = _build(typ, state, opt, lr_lambda, "state", 0)
        for group, saved in zip(opt.param_groups, groups, strict=True):
            group.update(saved)  # optimizer.load_state_dict: the saved hyperparameters, as they were
        clean = resume_state.clean(typ, state, n_groups, "state", _probes(), _child_type)
        try:
            sched.load_state_dict(clean)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise bad("state", f"torch cannot load this {typ} state: {err}") from None
    series = step_torch(sched, opt, steps + 1, momentum_key)
    out = Resumed(type=typ, candidates=candidates, last_epoch=_last_epoch(state), lr=series.lr,
                  momentum=series.momentum, momentum_key=momentum_key, crash_at=series.crash_at, crash=series.crash,
                  groups_from="optimizer param_groups" if optimizer_groups is not None else "the scheduler's _last_lr")
    _explain(out, state, groups)
    return out


def _choose(state: Mapping[str, Any], wanted: str | None, where: str) -> tuple[str, list[str]]:
    candidates = identify(state)
    if not candidates and {"best", "num_bad_epochs"} <= set(state):
        raise bad(where, "a ReduceLROnPlateau state: its next learning rates depend on the metrics you will feed it, "
                         "so there is no schedule to continue")
    if not candidates:
        shown = ", ".join(sorted(map(str, state))[:12])
        raise bad(where, f"not a state_dict of a scheduler torch {torch.__version__} has (keys: {shown})")
    if wanted is not None:
        if wanted not in candidates:
            raise bad("scheduler_type", f"this state is a {' or '.join(candidates)}, not {wanted!r}")
        return wanted, candidates
    if len(candidates) > 1:
        raise bad("scheduler_type", f"this state could be {' or '.join(candidates)} (they save the same keys): say which")
    return candidates[0], candidates


def _child_type(state: Mapping[str, Any], where: str) -> str:
    # Inside a composition there is no one to ask: LambdaLR and MultiplicativeLR save the same keys,
    # and the expression typed for lr_lambda is used with LambdaLR's meaning (a warning says so).
    found = identify(state)
    return "LambdaLR" if set(found) == _LAMBDAS else _choose(state, None, where)[0]


def _needs_groups(typ: str, state: Mapping[str, Any]) -> list[str]:
    """Optimizer hyperparameters this scheduler reads back from param_groups (none of them in its own state)."""
    if typ in ("SequentialLR", "ChainedScheduler"):
        kids = state.get("_schedulers") or []
        return sorted({k for ks in kids if isinstance(ks, Mapping) for k in _needs_groups(_child_type(ks, "state"), ks)})
    if typ == "OneCycleLR":
        extra = ("max_momentum", "base_momentum") if state.get("cycle_momentum", True) else ()
        return ["initial_lr", "max_lr", "min_lr", *extra]
    return ["swa_lr"] if typ == "SWALR" else []


def _last_epoch(state: Mapping[str, Any]) -> int:
    if "last_epoch" in state:
        return int(state["last_epoch"])
    kids = state.get("_schedulers") or [{}]
    return _last_epoch(kids[0]) if isinstance(kids[0], Mapping) else 0


def _state_count(state: Any, depth: int = 0) -> int:
    """Schedulers saved in ``state``: it and every composed one (SequentialLR/ChainedScheduler)."""
    kids = state.get("_schedulers") if isinstance(state, Mapping) and depth < 8 else None
    return 1 + (sum(_state_count(k, depth + 1) for k in kids) if isinstance(kids, list) else 0)


def _n_groups(state: Mapping[str, Any]) -> int:
    lrs = state.get("_last_lr", state.get("base_lrs"))
    if not isinstance(lrs, list) or not lrs or len(lrs) > MAX_GROUPS:
        raise bad("state._last_lr", f"must list the lr of each param group (1 to {MAX_GROUPS})")
    return len(lrs)


def _group_values(state: Mapping[str, Any], saved: Sequence[Mapping[str, Any]] | None, n: int) -> list[dict[str, Any]]:
    """Each group's hyperparameters: the checkpoint's optimizer param_groups, else what the scheduler saved."""
    if saved is None:
        last: list[Any] = state.get("_last_lr") or state.get("base_lrs") or []  # a list of n: _n_groups checked
        base = state.get("base_lrs")
        if not isinstance(base, list) or len(base) != n:
            base = last
        return [{"lr": number(last[i], f"state._last_lr[{i}]"), "initial_lr": number(base[i], f"state.base_lrs[{i}]")}
                for i in range(n)]
    if not isinstance(saved, Sequence) or len(saved) != n:
        raise bad("optimizer.param_groups", f"the scheduler has {n} param group(s), the optimizer state "
                                            f"{len(saved) if isinstance(saved, Sequence) else 'none'}")
    out = []
    for i, g in enumerate(saved):
        row: dict[str, Any] = {}
        for k in GROUP_KEYS:
            if k in g:
                where = f"optimizer.param_groups[{i}].{k}"
                v = g[k]
                row[k] = tuple(number(x, where) for x in v) if k == "betas" and isinstance(v, list | tuple) else number(v, where)
        if "lr" not in row:
            raise bad(f"optimizer.param_groups[{i}].lr", "is missing")
        out.append(row)
    return out


def _optimizer(groups: list[dict[str, Any]], momentum_key: str) -> torch.optim.Optimizer:
    # A stand-in with the same kind of momentum (CyclicLR/OneCycleLR write betas or momentum).
    params = [{"params": [torch.zeros(1, requires_grad=True)], "lr": max(g["lr"], 0.0)} for g in groups]
    if momentum_key == "betas":
        return torch.optim.Adam(params, betas=(0.9, 0.999))
    return torch.optim.SGD(params, momentum=0.9)


def _build(typ: str, state: Mapping[str, Any], opt: torch.optim.Optimizer, lr_lambda: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise bad(where, f"compositions nest at most {MAX_DEPTH} deep")
    cls = scheduler_class(typ)
    if typ in ("SequentialLR", "ChainedScheduler"):
        kids_state = state.get("_schedulers")
        if not isinstance(kids_state, list) or not kids_state or len(kids_state) > 16:
            raise bad(f"{where}._schedulers", "must be a list of 1 to 16 scheduler states")
        kids = []
        for i, ks in enumerate(kids_state):
            kw = f"{where}._schedulers[{i}]"
            if not isinstance(ks, Mapping):
                raise bad(kw, "must be a scheduler state (an object)")
            kids.append(_build(_child_type(ks, kw), ks, opt, lr_lambda, kw, depth + 1))
        if typ == "ChainedScheduler":
            return cls(kids, optimizer=opt)
        ms = state.get("_milestones")
        if not isinstance(ms, list) or len(ms) != len(kids) - 1 or not all(isinstance(m, int) and not isinstance(m, bool) for m in ms):
            raise bad(f"{where}._milestones", f"must list {len(kids) - 1} integer milestone(s)")
        return cls(opt, schedulers=kids, milestones=list(ms))
    try:
        return cls(opt, **_constructor_args(typ, state, len(opt.param_groups), lr_lambda, where))
    except InvalidRequest:
        raise
    except (ValueError, TypeError, ArithmeticError, KeyError) as err:
        raise bad(where, f"torch cannot build a {typ} from this state: {err}") from None


def _constructor_args(typ: str, state: Mapping[str, Any], n: int, lr_lambda: Any, where: str) -> dict[str, Any]:
    """Arguments that let the constructor run; load_state_dict then restores every saved value."""
    if typ in _LAMBDAS:
        if lr_lambda is None:
            raise bad("lr_lambda", f"{typ} saves no lambda (torch keeps only callable objects' attributes): type "
                                   "the expression your training script uses, e.g. 0.95 ** epoch")
        exprs = lr_lambda if isinstance(lr_lambda, list) else [lr_lambda] * n
        if len(exprs) != n:
            raise bad("lr_lambda", f"has {len(exprs)} expressions but there are {n} param groups")
        return {"lr_lambda": [_expr(e, f"lr_lambda[{i}]" if isinstance(lr_lambda, list) else "lr_lambda").__call__
                              for i, e in enumerate(exprs)]}
    if typ == "CyclicLR":
        return {"base_lr": 0.001, "max_lr": 0.1, "cycle_momentum": "base_momentums" in state}
    if typ == "OneCycleLR":
        return {"max_lr": 0.1, "total_steps": 10, "cycle_momentum": bool(state.get("cycle_momentum", True))}
    if typ == "SWALR":
        return {"swa_lr": 0.05}
    probe = _probes()[typ]
    info = SCHEDULERS[typ]
    return {a.name: probe[a.name] if not isinstance(probe[a.name], Counter) else list(probe[a.name].elements())
            for a in info.args if a.required and a.name in probe}


def _expr(text: Any, where: str) -> safe_expr.Expr:
    try:
        return safe_expr.parse(str(text) if isinstance(text, int | float) else text)
    except safe_expr.SafeExprError as err:
        raise InvalidRequest(f"{where}: {err.message}", field=where, reason=err.reason, position=err.position) from None


def _explain(out: Resumed, state: Mapping[str, Any], groups: list[dict[str, Any]]) -> None:
    saved = state.get("_last_lr")
    if isinstance(saved, list) and len(saved) == len(groups):
        differ = [i for i, (a, g) in enumerate(zip(saved, groups, strict=True))
                  if isinstance(a, int | float) and not math.isclose(float(a), g["lr"], rel_tol=1e-12)]
        if differ:
            out.warning_codes.append("lr-mismatch")
            out.warnings.append(f"the optimizer's lr of group(s) {', '.join(map(str, differ))} differs from the "
                                "scheduler's _last_lr: were they saved at different steps?")
    if out.crash is not None and out.crash_at is not None:
        out.warning_codes.append("stepped-past-end")
        out.warnings.append(f"torch raises in the {out.crash_at}th scheduler.step() after resuming (last_epoch "
                            f"{out.last_epoch + out.crash_at}): {out.crash}. A resumed run would stop there.")


def resume_checkpoint(ckpt: Checkpoint, path: str, *, steps: int, scheduler_type: str | None = None,
                      lr_lambda: Any = None, encoding: str = "raw") -> dict[str, Any]:
    """Resume the scheduler saved at ``path`` in an opened checkpoint, with the optimizer state saved next to it."""
    saved = ckpt.scheduler(path)
    opt = optimizer_for(saved, ckpt.optimizers)
    result = resume(saved.state, steps=steps, scheduler_type=scheduler_type, lr_lambda=lr_lambda,
                    optimizer_groups=None if opt is None else opt.param_groups)
    return {**result.to_dict(encoding), "checkpoint": ckpt.id, "path": path,
            "optimizer_path": None if opt is None else opt.path}


def resumables(checkpoints: Iterable[Checkpoint]) -> list[dict[str, Any]]:
    """Every LR scheduler state in the opened checkpoints, with what it looks like (for the lab's picker)."""
    out = []
    for ckpt in checkpoints:
        for s in ckpt.schedulers:
            out.append({"checkpoint": ckpt.id, "name": ckpt.name, **s.summary(), "candidates": identify(s.state)})
    return out
