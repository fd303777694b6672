"""LR scheduler states inside a training checkpoint (``{"scheduler": scheduler.state_dict(), ...}``).

Recognised by the keys every ``LRScheduler.state_dict()`` has; kept as a plain copy (numbers,
strings, lists, dicts, Counters), within a budget, for the LR lab's "resume" preview. Which
class it is, and continuing it, is the schedules package's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torchscope.inspect.checkpoints.optimizer import OptimizerInfo
from torchscope.inspect.checkpoints.records import SEP

MAX_VALUES = 20_000  # plain values copied out of one scheduler state
MAX_DEPTH = 8


@dataclass(frozen=True)
class SchedulerState:
    path: str  # key path in the checkpoint ("" when the file is one)
    state: dict[str, Any]

    @property
    def last_epoch(self) -> int | None:
        v = self.state.get("last_epoch")
        if v is None and isinstance(self.state.get("_schedulers"), list) and self.state["_schedulers"]:
            first = self.state["_schedulers"][0]
            v = first.get("last_epoch") if isinstance(first, Mapping) else None
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def last_lr(self) -> list[float] | None:
        v = self.state.get("_last_lr")
        return [float(x) for x in v] if isinstance(v, list) and all(isinstance(x, int | float) for x in v) else None

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "last_epoch": self.last_epoch, "last_lr": self.last_lr, "keys": sorted(map(str, self.state))}


def is_scheduler_state(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        return False
    if "_schedulers" in obj and "_last_lr" in obj:  # SequentialLR / ChainedScheduler
        return True
    return "last_epoch" in obj and ("base_lrs" in obj or "_last_lr" in obj)


class _TooBig(Exception):
    pass


def plain_copy(obj: Any) -> dict[str, Any] | None:
    """A copy of a scheduler state made of plain values only; None if it holds anything else or too much."""
    count = [0]

    def copy(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_VALUES or depth > MAX_DEPTH:
            raise _TooBig
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, Counter):
            return Counter({k: copy(c, depth + 1) for k, c in v.items() if isinstance(k, int)})
        if isinstance(v, Mapping):
            return {k: copy(x, depth + 1) for k, x in v.items() if isinstance(k, str | int)}
        if isinstance(v, list | tuple):
            return [copy(x, depth + 1) for x in v]
        raise _TooBig  # tensors, functions' states, anything else: not a schedule we can continue

    try:
        out = copy(obj, 0)
    except _TooBig:
        return None
    return out if isinstance(out, dict) else None


def optimizer_for(state: SchedulerState, optimizers: list[OptimizerInfo]) -> OptimizerInfo | None:
    """The optimizer state saved with this scheduler: same number of groups, the nearest by key path."""
    last = state.last_lr
    n = len(last) if last is not None else len(state.state.get("base_lrs") or [])
    fits = [o for o in optimizers if len(o.param_groups) == n]
    if not fits:
        return None
    parent = state.path.rpartition(SEP)[0]

    def rank(o: OptimizerInfo) -> tuple[bool, bool, int]:
        same_lr = last is not None and [g.get("lr") for g in o.param_groups] == last
        return (same_lr, o.path.rpartition(SEP)[0] == parent, -len(o.path))

    return max(fits, key=rank)
