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
from torchscope.inspect.checkpoints.records import MAX_OTHER, STATE_DICT_NAMES, Group
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


def walk_into(obj: Any, path: str, out: Walk, group: Group, depth: int = 0, seen: frozenset[int] = frozenset()) -> None:
    if is_tensorish(obj):
        out.tensors[path] = obj
        out.groups[path] = group
        return
    if depth > 64 or id(obj) in seen:
        out.other[path] = "<recursive>"
        return
    seen = seen | {id(obj)}
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
        for k, v in obj.items():
            walk_into(v, join_path(path, k), out, group, depth + 1, seen)
        return
    if isinstance(obj, (list, tuple)) and contains_tensor(obj):
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
