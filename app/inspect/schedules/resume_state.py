"""Checking a saved scheduler state before torch's ``load_state_dict`` sees it.

``load_state_dict`` is ``self.__dict__.update(state)``: a hostile state could set any attribute.
Every key must be one the recognised class saves itself, and every value of the kind it saves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from torchscope.inspect.errors import InvalidRequest

_CHOICES = {"mode": ("triangular", "triangular2", "exp_range"), "scale_mode": ("cycle", "iterations"),
            "_anneal_func_type": ("cos", "linear"), "_anneal_strategy": ("cos", "linear")}
_GROUP_LISTS = ("base_lrs", "_last_lr", "max_lrs", "base_momentums", "max_momentums")


def bad(where: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {reason}", field=where, reason=reason)


def number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise bad(where, f"must be a number, got {v!r}"[:200])
    return float(v)


def clean(typ: str, state: Mapping[str, Any], n: int, where: str, probes: Mapping[str, Mapping[str, Any]],
          child_type: Callable[[Mapping[str, Any], str], str]) -> dict[str, Any]:
    """The state with every key and value checked against what this class saves itself (a hostile
    state must not reach ``__dict__.update`` with anything else)."""
    out: dict[str, Any] = {}
    if typ in ("SequentialLR", "ChainedScheduler"):
        kids = state["_schedulers"]
        for k, v in state.items():
            if k == "_schedulers":
                out[k] = [clean(child_type(ks, f"{where}._schedulers[{i}]"), ks, n, f"{where}._schedulers[{i}]", probes, child_type)
                          for i, ks in enumerate(kids)]
            elif k == "_milestones":
                out[k] = list(v)
            elif k == "last_epoch":
                out[k] = _int(v, f"{where}.{k}")
            elif k == "_last_lr":
                out[k] = _floats(v, n, f"{where}.{k}")
            else:
                raise bad(f"{where}.{k}", f"{typ} saves no {k!r}")
        return out
    probe = probes[typ]
    for k, v in state.items():
        w = f"{where}.{k}"
        if k == "lr_lambdas":
            out[k] = [None] * n  # our own lambdas stay; torch restores only callable objects' attributes
        elif k == "milestones":
            out[k] = _milestones(v, w)
        elif k == "_schedule_phases":
            out[k] = _phases(v, w)
        elif k in _GROUP_LISTS:
            out[k] = _floats(v, n, w)
        elif k == "verbose" or k in probe:
            out[k] = _like(v, probe.get(k, False), w, k)
        else:
            raise bad(w, f"{typ} saves no {k!r}")
    return out


def _like(v: Any, probe: Any, where: str, key: str) -> Any:
    if isinstance(probe, bool):
        if not isinstance(v, bool):
            raise bad(where, f"must be true or false, got {v!r}"[:200])
        return v
    if isinstance(probe, int):
        return _int(v, where)
    if isinstance(probe, float):
        return number(v, where)
    if isinstance(probe, str):
        if key in _CHOICES and v not in _CHOICES[key]:
            raise bad(where, f"must be one of {', '.join(_CHOICES[key])}, got {v!r}"[:200])
        if not isinstance(v, str):
            raise bad(where, f"must be a string, got {v!r}"[:200])
        return v
    if probe is None and v is None:
        return None
    raise bad(where, f"unexpected value {v!r}"[:200])


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())) or abs(v) > 10**12:
        raise bad(where, f"must be an integer, got {v!r}"[:200])
    return int(v)


def _floats(v: Any, n: int, where: str) -> list[float]:
    if not isinstance(v, list | tuple) or len(v) != n:
        raise bad(where, f"must list {n} number(s), one per param group")
    return [number(x, f"{where}[{i}]") for i, x in enumerate(v)]


def _milestones(v: Any, where: str) -> Counter[int]:
    if isinstance(v, Mapping):  # a Counter, or its JSON form {"30": 1}
        items = list(v.items())
        if len(items) > 10_000:
            raise bad(where, "has too many milestones")
        return Counter({_int(int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k, where): _int(c, where) for k, c in items})
    if isinstance(v, list) and len(v) <= 10_000:
        return Counter(_int(x, where) for x in v)
    raise bad(where, "must be milestones (a Counter, an object of counts or a list)")


def _phases(v: Any, where: str) -> list[dict[str, Any]]:
    names = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
    if not isinstance(v, list) or not 2 <= len(v) <= 3:
        raise bad(where, "must be OneCycleLR's 2 or 3 phases")
    out = []
    for i, p in enumerate(v):
        w = f"{where}[{i}]"
        if not isinstance(p, Mapping) or set(p) != {"end_step", "start_lr", "end_lr", "start_momentum", "end_momentum"}:
            raise bad(w, "must be a phase {end_step, start_lr, end_lr, start_momentum, end_momentum}")
        if not all(p[k] in names for k in ("start_lr", "end_lr", "start_momentum", "end_momentum")):
            raise bad(w, f"phase ends must name one of {', '.join(sorted(names))}")
        out.append({**p, "end_step": number(p["end_step"], f"{w}.end_step")})
    return out
