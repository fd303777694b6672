"""Classifying the objects a checkpoint holds: tensors (real or stubs), state_dicts, JSON-safe values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from torchscope.inspect.checkpoints.records import SEP
from torchscope.inspect.checkpoints.unpickler import TensorStub

# ---------------------------------------------------------------------------
# Walking a loaded (stub or real) object


def is_tensorish(obj: Any) -> bool:
    return isinstance(obj, (TensorStub, torch.Tensor))


def tensor_meta(obj: TensorStub | torch.Tensor) -> tuple[tuple[int, ...], torch.dtype, str | None]:
    if isinstance(obj, TensorStub):
        return obj.shape, obj.dtype, f"{obj.storage.key}@{obj.offset}"
    storage = None
    try:
        if obj.device.type != "meta" and not obj.is_sparse:
            storage = f"{obj.untyped_storage().data_ptr()}@{obj.storage_offset()}"
    except (RuntimeError, NotImplementedError):
        storage = None
    return tuple(obj.shape), obj.dtype, storage


MAX_RENDERED = 1000  # nodes one json_safe call renders: shared sub-objects cannot multiply it


def json_safe(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A JSON-able rendering of a non-tensor value (NaN/inf become strings; JSON has none)."""
    if budget is None:
        budget = [MAX_RENDERED]
    budget[0] -= 1
    if budget[0] < 0:
        return "…"
    if value is None or isinstance(value, (bool, str)):
        return value[:500] if isinstance(value, str) else value
    if isinstance(value, int):  # a 5,000-digit int cannot even be printed (int-to-str limit)
        return value if value.bit_length() <= 64 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (torch.dtype, torch.device, complex, bytes, bytearray)):
        return repr(bytes(value[:150]))[:200] if isinstance(value, (bytes, bytearray)) else str(value)
    if depth > 4:
        return _short_repr(value)
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {_key(k): json_safe(v, depth + 1, budget) for k, v in items[:50]}
        if len(items) > 50:
            out["…"] = f"{len(items) - 50} more"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = list(value)
        out_list = [json_safe(v, depth + 1, budget) for v in seq[:50]]
        if len(seq) > 50:
            out_list.append(f"… {len(seq) - 50} more")
        return out_list
    if is_tensorish(value):
        return "<tensor>"
    return _short_repr(value)


def _key(k: Any) -> str:
    if isinstance(k, (str, int, float, bool)) or k is None:
        return str(json_safe(k))[:200]
    return _short_repr(k)


def _short_repr(value: Any) -> str:
    # Never repr a container: shared references make its repr exponential (2**40 for 40 small lists).
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        return repr(value)[:200]
    except (RecursionError, ValueError):  # deeply nested, or an int past the int-to-str limit
        return f"<{type(value).__name__}>"


def is_state_dict(obj: Any) -> bool:
    """A flat mapping whose values are tensors (``_extra_state`` entries may be anything)."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    n = 0
    for k, v in obj.items():
        if not isinstance(k, str):
            return False
        if is_tensorish(v):
            n += 1
        elif not k.endswith("_extra_state"):
            return False
    return n > 0


def contains_tensor(obj: Any, depth: int = 0, memo: dict[int, bool] | None = None) -> bool:
    """Whether a tensor (or module) is inside; ``memo`` (by id) keeps shared sub-objects from being re-searched."""
    if is_tensorish(obj) or isinstance(obj, nn.Module):
        return True
    if depth > 32:
        return False
    if not isinstance(obj, (Mapping, list, tuple)):
        return False
    if memo is None:
        memo = {}
    known = memo.get(id(obj))
    if known is not None:
        return known
    children = obj.values() if isinstance(obj, Mapping) else obj
    found = any(contains_tensor(v, depth + 1, memo) for v in children)
    memo[id(obj)] = found
    return found


def join_path(prefix: str, part: Any) -> str:
    return f"{prefix}{SEP}{part}" if prefix else str(part)
