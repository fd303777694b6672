"""The summary totals: parameters, buffers, dtypes and devices (the cards and ``GET /api/models/{id}``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypedDict

import torch
from torch import nn

from torchscope.inspect.structure.gc_pause import paused_gc
from torchscope.inspect.structure.tensor_facts import dtype_name, is_uninitialized, nbytes, numel
from torchscope.inspect.structure.walk import Walk


class ParameterTotals(TypedDict):
    total: int
    trainable: int
    frozen: int
    tensors: int
    bytes: int
    uninitialized: list[str]


class BufferTotals(TypedDict):
    total: int
    persistent: int
    non_persistent: int
    tensors: int
    bytes: int


class Summary(TypedDict):
    id: str
    name: str
    class_: str
    modules: int
    children: int
    parameters: ParameterTotals
    buffers: BufferTotals
    dtypes: dict[str, int]
    dtype_bytes: dict[str, int]
    buffer_dtypes: dict[str, int]
    devices: list[str]
    meta: bool
    training: bool


def buffer_persistence(walk: Walk) -> dict[int, bool]:
    """id(buffer) -> persistent; a tensor registered persistent under any name is saved."""
    out: dict[int, bool] = {}
    for name, buf in walk.buffers:
        out[id(buf)] = out.get(id(buf), False) or name not in walk.non_persistent
    return out


@paused_gc
def summary(model: nn.Module, *, model_id: str = "", name: str = "", walk: Walk | None = None) -> dict[str, Any]:
    """Totals for the summary cards and ``GET /api/models/{id}``."""
    walk = walk or Walk(model)
    p_total = p_train = p_tensors = p_bytes = 0
    # Accumulated by dtype object, named once at the end (a few calls fewer per tensor).
    by_dtype: dict[torch.dtype, int] = defaultdict(int)
    lazy_dtypes: set[torch.dtype] = set()
    devices: set[torch.device] = set()
    uninitialized: list[str] = []
    for pname, p in walk.distinct(walk.params):  # as parameters(): each tensor once
        p_tensors += 1
        dt = p.dtype
        devices.add(p.device)
        if is_uninitialized(p):
            uninitialized.append(pname)
            lazy_dtypes.add(dt)
            continue
        n = p.numel()
        p_total += n
        if p.requires_grad:
            p_train += n
        by_dtype[dt] += n
    for dt in lazy_dtypes:
        by_dtype.setdefault(dt, 0)
    dtypes = {dtype_name(dt): n for dt, n in by_dtype.items()}
    dtype_bytes = {dtype_name(dt): n * dt.itemsize for dt, n in by_dtype.items()}
    p_bytes = sum(dtype_bytes.values())
    persistence = buffer_persistence(walk)
    b_total = b_pers = b_tensors = b_bytes = 0
    buffer_dtypes: dict[str, int] = defaultdict(int)
    for _bname, b in walk.distinct(walk.buffers):
        n = numel(b)
        b_total += n
        b_tensors += 1
        b_bytes += nbytes(b)
        if persistence.get(id(b), True):
            b_pers += n
        buffer_dtypes[dtype_name(b.dtype)] += n
        devices.add(b.device)
    return {
        "id": model_id,
        "name": name,
        "class": type(model).__name__,
        "modules": walk.module_count(),
        "children": len({id(c.module) for c in walk.root.children}),  # children() de-duplicates
        "parameters": {
            "total": p_total,
            "trainable": p_train,
            "frozen": p_total - p_train,
            "tensors": p_tensors,
            "bytes": p_bytes,
            "uninitialized": uninitialized,
        },
        "buffers": {
            "total": b_total,
            "persistent": b_pers,
            "non_persistent": b_total - b_pers,
            "tensors": b_tensors,
            "bytes": b_bytes,
        },
        "dtypes": dtypes,
        "dtype_bytes": dtype_bytes,
        "buffer_dtypes": dict(buffer_dtypes),
        "devices": sorted({str(d) for d in devices}),
        "meta": any(d.type == "meta" for d in devices),
        "training": model.training,
    }
