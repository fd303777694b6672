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


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-able rendering of a non-tensor value (NaN/inf become strings; JSON has none)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value[:500] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (torch.dtype, torch.device, complex, bytes, bytearray)):
        return repr(value)[:200] if isinstance(value, (bytes, bytearray)) else str(value)
    if depth > 4:
        return repr(value)[:200]
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): json_safe(v, depth + 1) for k, v in items[:50]}
        if len(items) > 50:
            out["…"] = f"{len(items) - 50} more"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = list(value)
        out_list = [json_safe(v, depth + 1) for v in seq[:50]]
        if len(seq) > 50:
            out_list.append(f"… {len(seq) - 50} more")
        return out_list
    if is_tensorish(value):
        return "<tensor>"
    return repr(value)[:200]


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


def contains_tensor(obj: Any, depth: int = 0) -> bool:
    if is_tensorish(obj) or isinstance(obj, nn.Module):
        return True
    if depth > 32:
        return False
    if isinstance(obj, Mapping):
        return any(contains_tensor(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(contains_tensor(v, depth + 1) for v in obj)
    return False


def join_path(prefix: str, part: Any) -> str:
    return f"{prefix}{SEP}{part}" if prefix else str(part)
