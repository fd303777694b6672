"""The parameter and buffer tables: one row per name, in ``named_parameters``/``named_buffers`` order."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from torchscope.inspect.structure.gc_pause import paused_gc
from torchscope.inspect.structure.tensor_facts import dtype_name, is_uninitialized
from torchscope.inspect.structure.walk import Walk


def _tensor_rows(named: list[tuple[str, torch.Tensor]]) -> list[dict[str, Any]]:
    """The fields parameter and buffer rows share; ``shared_with`` lists the tensor's other names."""
    names: dict[int, list[str]] = defaultdict(list)
    for n, t in named:
        names[id(t)].append(n)
    rows = []
    devices: dict[torch.device, str] = {}  # str(device) costs ~0.7 us; 20,000 rows add up
    for n, t in named:
        same = names[id(t)]
        lazy = is_uninitialized(t)
        count = 0 if lazy else t.numel()
        dtype = t.dtype
        dev = t.device
        dev_name = devices.get(dev)
        if dev_name is None:
            dev_name = devices[dev] = str(dev)
        rows.append(
            {
                "name": n,
                # torch.Size is a tuple: it serialises as a JSON list without a copy
                "shape": None if lazy else t.shape,
                "dtype": dtype_name(dtype),
                "device": dev_name,
                "numel": count,
                "bytes": count * dtype.itemsize,
                "shared_with": [o for o in same if o != n] if len(same) > 1 else [],
                "uninitialized": lazy,
            }
        )
    return rows


@paused_gc
def parameters_table(model: nn.Module, walk: Walk | None = None) -> list[dict[str, Any]]:
    """One row per name of ``named_parameters(remove_duplicate=False)``, in that order."""
    walk = walk or Walk(model)
    rows = _tensor_rows(walk.params)
    for row, (_, p) in zip(rows, walk.params, strict=True):
        row["requires_grad"] = p.requires_grad
    return rows


@paused_gc
def buffers_table(model: nn.Module, walk: Walk | None = None) -> list[dict[str, Any]]:
    """One row per name of ``named_buffers(remove_duplicate=False)``, in that order."""
    walk = walk or Walk(model)
    rows = _tensor_rows(walk.buffers)
    for row in rows:
        row["persistent"] = row["name"] not in walk.non_persistent
    return rows
