"""Walking a loaded (stub or real) checkpoint object: tensors, state_dicts, optimizers, other values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchscope.inspect.checkpoints.optimizer import (
    OptimizerInfo,
    is_optimizer_state,
    optimizer_info,
)
from torchscope.inspect.checkpoints.records import (
    MAX_OTHER,
    STATE_DICT_NAMES,
    Group,
    UnreadableCheckpoint,
)
from torchscope.inspect.checkpoints.schedulers import SchedulerState, is_scheduler_state, plain_copy
from torchscope.inspect.checkpoints.values import (
    contains_tensor,
    is_state_dict,
    is_tensorish,
    join_path,
    json_safe,
)


@dataclass
class Walk:
    tensors: dict[str, Any] = field(default_factory=dict)  # key path -> stub or tensor
    groups: dict[str, Group] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    optimizers: list[OptimizerInfo] = field(default_factory=list)
    state_dicts: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (path, mapping)
    modules: list[tuple[str, str]] = field(default_factory=list)  # (path, class) of pickled modules
    schedulers: list[SchedulerState] = field(default_factory=list)  # LR scheduler state_dicts, for "resume"
    visits: int = 0  # objects visited: a pickle's shared sub-objects can make a walk exponential
    contains: dict[int, bool] = field(default_factory=dict)  # contains_tensor's memo, by id
    entered: set[int] = field(default_factory=set)  # containers walked at least once
    revisits: int = 0


MAX_WALK = 1_000_000  # objects one walk visits (a 100k-tensor checkpoint visits ~300k)
# Containers reached again by another path: {"model": sd, "ema": sd} is one; 40 lists of two
# references to the next one are 2**40 (a "billion laughs" made of pickle memo references).
MAX_REVISITS = 10_000


def walk_into(obj: Any, path: str, out: Walk, group: Group, depth: int = 0, seen: set[int] | None = None) -> None:
    """Record every tensor (by key path), state_dict, optimizer and plain value under ``obj``.

    ``seen`` holds the ids of the containers on the current path (cycles); it is one set,
    added to and removed from, since copying it per level made shared sub-objects quadratic.
    """
    if seen is None:
        seen = set()
    out.visits += 1
    if out.visits > MAX_WALK:
        raise UnreadableCheckpoint(
            f"the checkpoint's objects lead to more than {MAX_WALK:,} entries (shared sub-objects?); the limit", rule="budget"
        )
    if is_tensorish(obj):
        out.tensors[path] = obj
        out.groups[path] = group
        return
    if depth > 64 or id(obj) in seen:
        out.other[path] = "<recursive>"
        return
    if id(obj) in out.entered:
        out.revisits += 1
        if out.revisits > MAX_REVISITS:
            raise UnreadableCheckpoint(
                f"the checkpoint's objects reach the same containers more than {MAX_REVISITS:,} times by other "
                "paths (shared references that multiply its entries); the limit",
                rule="budget",
            )
    elif isinstance(obj, (Mapping, list, tuple)):
        out.entered.add(id(obj))
    seen.add(id(obj))
    try:
        _walk_container(obj, path, out, group, depth, seen)
    finally:
        seen.discard(id(obj))


def _walk_container(obj: Any, path: str, out: Walk, group: Group, depth: int, seen: set[int]) -> None:
    if isinstance(obj, nn.Module):  # only reachable for a trusted pickle
        out.modules.append((path, f"{type(obj).__module__}.{type(obj).__qualname__}"))
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        if is_optimizer_state(obj):
            out.optimizers.append(optimizer_info(obj, path))
            state = obj["state"]
            for pid, pstate in state.items():
                walk_into(pstate, join_path(join_path(path, "state"), pid), out, Group.OPTIMIZER, depth + 2, seen)
            return
        if group is not Group.OPTIMIZER and is_state_dict(obj):
            out.state_dicts.append((path, obj))
        if is_scheduler_state(obj) and len(out.schedulers) < 16:
            copied = plain_copy(obj)
            if copied is not None:
                out.schedulers.append(SchedulerState(path, copied))
        for k, v in obj.items():
            walk_into(v, join_path(path, k), out, group, depth + 1, seen)
        return
    if isinstance(obj, (list, tuple)) and contains_tensor(obj, memo=out.contains):
        for i, v in enumerate(obj):
            walk_into(v, join_path(path, i), out, group, depth + 1, seen)
        return
    if len(out.other) < MAX_OTHER:
        out.other[path or "(root)"] = json_safe(obj)


def pick_state_dict(walk: Walk) -> str | None:
    """Which state_dict load_state_dict would get: the root, a conventional name, else the largest."""
    if not walk.state_dicts:
        return None
    by_path = dict(walk.state_dicts)
    if "" in by_path:
        return ""
    for name in STATE_DICT_NAMES:
        if name in by_path:
            return name
    return max(walk.state_dicts, key=lambda item: len(item[1]))[0]


def all_tensors(obj: Any) -> dict[str, torch.Tensor]:
    walk = Walk()
    walk_into(obj, "", walk, Group.OTHER)
    return walk.tensors
