"""Structure of an nn.Module: summary totals, the module tree, parameter and buffer tables.

Counting follows torch exactly: a tensor reachable under several names (tied
weights, a module reused at two paths) is counted once, as
``sum(p.numel() for p in model.parameters())`` does, because ``parameters()``
de-duplicates by identity. Uninitialized lazy parameters count 0 and are
flagged. Nothing here changes the model.

The package, one job per file: ``walk`` (the one pass over ``_modules`` everything reads),
``tensor_facts`` and ``gc_pause`` (the cheap helpers it runs on), ``totals`` (summary),
``tree_view`` (tree and search), ``flat_view`` (``named_modules`` beside ``children``),
``tables`` (parameter and buffer rows).
"""

from __future__ import annotations

from torchscope.inspect.structure.flat_view import modules_flat
from torchscope.inspect.structure.gc_pause import paused_gc
from torchscope.inspect.structure.tables import buffers_table, parameters_table
from torchscope.inspect.structure.tensor_facts import (
    dtype_name,
    is_uninitialized,
    nbytes,
    numel,
    shape_of,
)
from torchscope.inspect.structure.totals import (
    BufferTotals,
    ParameterTotals,
    Summary,
    buffer_persistence,
    summary,
)
from torchscope.inspect.structure.tree_view import ModuleIndex, search_tree, tree
from torchscope.inspect.structure.walk import Walk

__all__ = [
    "BufferTotals",
    "ModuleIndex",
    "ParameterTotals",
    "Summary",
    "Walk",
    "buffer_persistence",
    "buffers_table",
    "dtype_name",
    "is_uninitialized",
    "modules_flat",
    "nbytes",
    "numel",
    "parameters_table",
    "paused_gc",
    "search_tree",
    "shape_of",
    "summary",
    "tree",
]
