"""Real torch objects: build the optimizer and scheduler a spec describes, and step them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from torchscope.inspect import safe_expr
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules.catalogue import scheduler_class
from torchscope.inspect.schedules.requests import PreviewSpec, SchedulerSpec


def resolve_context(spec: SchedulerSpec, ctx_steps: int) -> SchedulerSpec:
    """The spec with what the run decides filled in: OneCycleLR's ``total_steps`` defaults to ``ctx_steps``.

    Resolved once for the schedule as the user steps it, so that a variant (the per-batch
    overlay) keeps the same arguments, as the user's code would, instead of recomputing them.
    """
    kids = tuple(resolve_context(c, ctx_steps) for c in spec.children)
    a = spec.args
    if spec.type == "OneCycleLR" and a.get("total_steps") is None and not (a.get("epochs") and a.get("steps_per_epoch")):
        return replace(spec, args={**a, "total_steps": ctx_steps}, children=kids)
    return replace(spec, children=kids) if kids != spec.children else spec


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
    if params is None:  # 2-D: Muon accepts matrices only
        params = [[torch.zeros(1, 1, requires_grad=True)] for _ in spec.groups]
    groups = [{"params": list(p), **o} for p, o in zip(params, spec.groups, strict=True)]
    try:
        return cls(groups, **spec.optimizer.args)  # type: ignore[no-any-return]
    except (ValueError, TypeError) as err:
        raise InvalidRequest(f"optimizer: torch rejects it: {err}", field="optimizer", reason=str(err)) from None


def build_scheduler(spec: SchedulerSpec, optimizer: torch.optim.Optimizer, ctx_steps: int) -> Any:
    """The real torch scheduler for ``spec`` (compositions built bottom-up, as one writes them)."""
    cls = scheduler_class(spec.type)
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
        except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, RuntimeError) as err:
            raise InvalidRequest(
                f"{spec.field}: torch rejects {spec.type}: {err}", field=spec.field, reason=str(err)
            ) from None


def momentum_of(group: dict[str, Any], key: str | None) -> float | None:
    if key is None:
        return None
    v = group.get(key)
    if key == "betas" and v is not None:
        v = v[0]
    return None if v is None else float(v)


@dataclass
class Series:
    """Values after scheduler step k (k = 0: after construction) for each group."""

    lr: np.ndarray  # (G, n), NaN after a crash
    momentum: np.ndarray | None  # (G, n) or None when the optimizer has no momentum
    crash: str | None = None  # torch's error when it stops stepping
    crash_at: int | None = None  # scheduler step index at which torch raised
    engine: str = "exact"


def step_torch(sched: Any, optimizer: torch.optim.Optimizer, n: int, momentum_key: str | None,
               metrics: Sequence[float] | None = None, *, swa: Any = None, swa_start: int = 0) -> Series:
    """Step the real scheduler; entry k is the groups' lr after k steps. One extra final step detects a crash.

    With ``swa``, step k goes to ``swa`` once the loop index k - 1 is past ``swa_start`` (torch's
    SWA recipe: ``if epoch > swa_start: swa_scheduler.step() else: scheduler.step()``).
    """
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
                    if swa is not None and k - 1 > swa_start:
                        swa.step()
                    elif metrics is not None:
                        sched.step(metrics[min(k - 1, len(metrics) - 1)])
                    else:
                        sched.step()
                except Exception as err:  # torch raised in step(): the training loop would stop here
                    out.crash, out.crash_at = crash_text(err), k
                    break
            if k == n:
                break
            # What the next optimizer.step() uses (== get_last_lr() of the scheduler that stepped).
            out.lr[:, k] = [float(gr["lr"]) for gr in optimizer.param_groups]
            if out.momentum is not None:
                out.momentum[:, k] = [momentum_of(gr, momentum_key) for gr in optimizer.param_groups]
    return out


def step_swa(sched: Any, swa: Any, start: int, optimizer: torch.optim.Optimizer, n: int,
             momentum_key: str | None, metrics: Sequence[float] | None = None) -> Series:
    """The SWA loop: ``sched`` up to loop index ``start``, ``swa`` (SWALR) after it."""
    return step_torch(sched, optimizer, n, momentum_key, metrics, swa=swa, swa_start=start)


def crash_text(err: BaseException) -> str:
    """torch's error as the preview reports it (the replay writes the same text)."""
    if isinstance(err, safe_expr.SafeExprError):  # our lambda raised where the user's Python lambda would
        return f"{err.kind} in lr_lambda: {err.reason}"
    msg = str(err) or _KNOWN_CRASHES.get(type(err).__name__, "")
    return f"{type(err).__name__}: {msg}"


_KNOWN_CRASHES = {
    # SequentialLR hands over with _update_lr(0), which calls get_lr(); composites have none.
    "NotImplementedError": "SequentialLR cannot hand over to a ChainedScheduler/SequentialLR (it has no get_lr())",
}
