"""Optimizer state_dicts inside checkpoints: param groups and per-parameter state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torchscope.inspect.checkpoints.values import is_tensorish, join_path, json_safe


@dataclass(frozen=True)
class ParamState:
    """One parameter's optimizer state: tensors by name (their key paths) and plain values."""

    id: int
    group: int
    name: str | None
    tensors: dict[str, str]  # state name -> full key path (exp_avg -> optimizer/state/0/exp_avg)
    values: dict[str, Any]  # state name -> plain value (e.g. an int step)


@dataclass(frozen=True)
class OptimizerInfo:
    path: str  # key path of the optimizer state_dict ("" when the file is one)
    param_groups: list[dict[str, Any]]  # hyperparameters per group, plus "params" ids
    params: list[ParamState]
    names_from: str | None  # "param_names" when the file names them, else None

    @property
    def param_ids(self) -> list[int]:
        return [pid for g in self.param_groups for pid in g["params"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "param_groups": self.param_groups,
            "params": [
                {
                    "id": p.id,
                    "group": p.group,
                    "name": p.name,
                    "state": {**{k: {"key": v} for k, v in p.tensors.items()}, **p.values},
                }
                for p in self.params
            ],
            "names_from": self.names_from,
        }


def is_optimizer_state(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and isinstance(obj.get("state"), Mapping)
        and isinstance(obj.get("param_groups"), list)
        and all(isinstance(g, Mapping) and isinstance(g.get("params"), list) for g in obj["param_groups"])
    )


def optimizer_info(sd: Mapping[str, Any], path: str) -> OptimizerInfo:
    groups: list[dict[str, Any]] = []
    names: dict[int, str] = {}
    for i, g in enumerate(sd["param_groups"]):
        ids = [int(p) for p in g["params"] if isinstance(p, int)]
        hyper = {str(k): json_safe(v) for k, v in g.items() if k not in ("params", "param_names")}
        pnames = g.get("param_names")
        if isinstance(pnames, list) and len(pnames) == len(ids):
            names.update({pid: str(n) for pid, n in zip(ids, pnames, strict=True)})
        groups.append({"index": i, "params": ids, **hyper})
    group_of = {pid: g["index"] for g in groups for pid in g["params"]}
    params: list[ParamState] = []
    state = sd["state"]
    for pid in [pid for g in groups for pid in g["params"]]:
        pstate = state.get(pid, state.get(str(pid), {}))
        tensors: dict[str, str] = {}
        values: dict[str, Any] = {}
        if isinstance(pstate, Mapping):
            for k, v in pstate.items():
                if is_tensorish(v):
                    tensors[str(k)] = join_path(join_path(join_path(path, "state"), pid), k)
                else:
                    values[str(k)] = json_safe(v)
        params.append(ParamState(pid, group_of[pid], names.get(pid), tensors, values))
    return OptimizerInfo(path, groups, params, "param_names" if names else None)
