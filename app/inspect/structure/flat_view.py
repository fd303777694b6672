"""The flat modules view: ``named_modules()`` (each module once) next to ``children()``."""

from __future__ import annotations

from typing import Any

from torch import nn

from torchscope.inspect.structure.gc_pause import paused_gc
from torchscope.inspect.structure.tree_view import ModuleIndex


@paused_gc
def modules_flat(model: nn.Module, index: ModuleIndex | None = None) -> dict[str, Any]:
    """``named_modules()`` (each module once) next to ``children()``: the flat view."""
    index = index or ModuleIndex(model)
    rows = []
    seen: set[int] = set()
    for path, entry in index.by_path.items():  # walk order == named_modules() order
        key = id(entry.module)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "path": path,
                "class": type(entry.module).__name__,
                "depth": entry.depth,
                "params_own": entry.params_own,
                "params_total": entry.params_total,
                "also_at": [p for p in index.paths_of[key] if p != path],
            }
        )
    return {
        "children": [{"name": n, "class": type(m).__name__} for n, m in model.named_children()],
        "modules": rows,
        "named_modules_count": len(rows),
        "occurrences": len(index.by_path),
    }
