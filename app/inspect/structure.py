"""Structure of an nn.Module: summary totals, the module tree, parameter and buffer tables.

Counting follows torch exactly: a tensor reachable under several names (tied
weights, a module reused at two paths) is counted once, as
``sum(p.numel() for p in model.parameters())`` does, because ``parameters()``
de-duplicates by identity. Uninitialized lazy parameters count 0 and are
flagged. Nothing here changes the model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypedDict

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from app.inspect.errors import InvalidRequest, NotFound


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def is_uninitialized(t: torch.Tensor) -> bool:
    """Lazy modules hold placeholders until their first forward."""
    return isinstance(t, UninitializedParameter | UninitializedBuffer)


def numel(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel()


def nbytes(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel() * t.element_size()


def shape_of(t: torch.Tensor) -> list[int] | None:
    return None if is_uninitialized(t) else list(t.shape)


# --------------------------------------------------------------------------- summary


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


def _non_persistent_names(model: nn.Module) -> set[str]:
    """Full names of buffers registered with ``persistent=False``."""
    names: set[str] = set()
    for path, module in model.named_modules(remove_duplicate=False):
        for b in module._non_persistent_buffers_set:
            names.add(f"{path}.{b}" if path else b)
    return names


def buffer_persistence(model: nn.Module) -> dict[int, bool]:
    """id(buffer) -> persistent; a tensor registered persistent anywhere is saved."""
    non_persistent = _non_persistent_names(model)
    out: dict[int, bool] = {}
    for name, buf in model.named_buffers(remove_duplicate=False):
        out[id(buf)] = out.get(id(buf), False) or name not in non_persistent
    return out


def summary(model: nn.Module, *, model_id: str = "", name: str = "") -> dict[str, Any]:
    """Totals for the summary cards and ``GET /api/models/{id}``."""
    p_total = p_train = p_tensors = p_bytes = 0
    dtypes: dict[str, int] = defaultdict(int)
    dtype_bytes: dict[str, int] = defaultdict(int)
    devices: set[str] = set()
    uninitialized: list[str] = []
    meta = False
    for pname, p in model.named_parameters():  # de-duplicated, like parameters()
        n = numel(p)
        if is_uninitialized(p):
            uninitialized.append(pname)
        p_total += n
        p_tensors += 1
        p_bytes += nbytes(p)
        if p.requires_grad:
            p_train += n
        dtypes[dtype_name(p.dtype)] += n
        dtype_bytes[dtype_name(p.dtype)] += nbytes(p)
        devices.add(str(p.device))
        meta = meta or p.is_meta
    persistence = buffer_persistence(model)
    b_total = b_pers = b_tensors = b_bytes = 0
    buffer_dtypes: dict[str, int] = defaultdict(int)
    for _bname, b in model.named_buffers():
        n = numel(b)
        b_total += n
        b_tensors += 1
        b_bytes += nbytes(b)
        if persistence.get(id(b), True):
            b_pers += n
        buffer_dtypes[dtype_name(b.dtype)] += n
        devices.add(str(b.device))
        meta = meta or b.is_meta
    return {
        "id": model_id,
        "name": name,
        "class": type(model).__name__,
        "modules": sum(1 for _ in model.named_modules()),
        "children": sum(1 for _ in model.named_children()),
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
        "dtypes": dict(dtypes),
        "dtype_bytes": dict(dtype_bytes),
        "buffer_dtypes": dict(buffer_dtypes),
        "devices": sorted(devices),
        "meta": meta,
        "training": model.training,
    }


# --------------------------------------------------------------------------- tree


@dataclass(eq=False)
class _Entry:
    """One occurrence of a module in the tree (a shared module has several)."""

    path: str
    name: str
    module: nn.Module
    depth: int
    children: list[_Entry]
    params_own: int
    buffers_own: int
    params_total: int
    buffers_total: int


def _prefixes(module_path: str) -> list[str]:
    """``"a.b"`` -> ``["", "a", "a.b"]``: every tree node that contains that module."""
    if not module_path:
        return [""]
    parts = module_path.split(".")
    return ["", *(".".join(parts[: i + 1]) for i in range(len(parts)))]


def _duplicate_correction(named: list[tuple[str, torch.Tensor]]) -> dict[str, int]:
    """Elements to subtract per node so a tensor seen at several names counts once there."""
    occurrences: dict[int, list[str]] = defaultdict(list)
    sizes: dict[int, int] = {}
    for name, t in named:
        occurrences[id(t)].append(name.rpartition(".")[0])
        sizes[id(t)] = numel(t)
    correction: dict[str, int] = defaultdict(int)
    for key, module_paths in occurrences.items():
        if len(module_paths) < 2:
            continue
        counts: dict[str, int] = defaultdict(int)
        for mp in module_paths:
            for prefix in _prefixes(mp):
                counts[prefix] += 1
        for prefix, c in counts.items():
            if c > 1:
                correction[prefix] += (c - 1) * sizes[key]
    return correction


class ModuleIndex:
    """Every module occurrence reachable by ``named_children()``, with subtree totals.

    Built in one pass; tied tensors and shared modules are corrected so that each
    node's ``params_total`` equals ``sum(p.numel() for p in node.parameters())``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.by_path: dict[str, _Entry] = {}
        self.paths_of: dict[int, list[str]] = defaultdict(list)
        own_cache: dict[int, tuple[int, int]] = {}
        on_stack: set[int] = set()

        def visit(module: nn.Module, path: str, name: str, depth: int) -> _Entry:
            key = id(module)
            self.paths_of[key].append(path)
            own = own_cache.get(key)
            if own is None:
                seen: set[int] = set()
                p_own = b_own = 0
                for p in module._parameters.values():
                    if p is not None and id(p) not in seen:
                        seen.add(id(p))
                        p_own += numel(p)
                for b in module._buffers.values():
                    if b is not None and id(b) not in seen:
                        seen.add(id(b))
                        b_own += numel(b)
                own = own_cache[key] = (p_own, b_own)
            entry = _Entry(path, name, module, depth, [], own[0], own[1], own[0], own[1])
            self.by_path[path] = entry
            on_stack.add(key)
            for child_name, child in module._modules.items():
                if child is None or id(child) in on_stack:  # None placeholders; guard against cycles
                    continue
                child_path = f"{path}.{child_name}" if path else child_name
                c = visit(child, child_path, child_name, depth + 1)
                entry.children.append(c)
                entry.params_total += c.params_total
                entry.buffers_total += c.buffers_total
            on_stack.discard(key)
            return entry

        self.root = visit(model, "", "", 0)
        p_fix = _duplicate_correction(list(model.named_parameters(remove_duplicate=False)))
        b_fix = _duplicate_correction(list(model.named_buffers(remove_duplicate=False)))
        for path, n in p_fix.items():
            if path in self.by_path:
                self.by_path[path].params_total -= n
        for path, n in b_fix.items():
            if path in self.by_path:
                self.by_path[path].buffers_total -= n

    def node(self, entry: _Entry, depth: int | None) -> dict[str, Any]:
        module = entry.module
        paths = self.paths_of[id(module)]
        try:
            extra = module.extra_repr()
        except Exception as exc:  # a user's extra_repr may assume a forward has run
            extra = f"<extra_repr raised {type(exc).__name__}>"
        node: dict[str, Any] = {
            "path": entry.path,
            "name": entry.name,
            "class": type(module).__name__,
            "extra_repr": extra,
            "params_own": entry.params_own,
            "params_total": entry.params_total,
            "buffers_own": entry.buffers_own,
            "buffers_total": entry.buffers_total,
            "child_count": len(entry.children),
            "depth": entry.depth,
            "shared": len(paths) > 1,
            "shared_with": [p for p in paths if p != entry.path],
            "training": module.training,
        }
        if depth is None or depth > 0:
            next_depth = None if depth is None else depth - 1
            node["children"] = [self.node(c, next_depth) for c in entry.children]
        else:
            node["children"] = None  # not loaded: fetch with ?path=<path>
        return node


def tree(model: nn.Module, path: str = "", depth: int | None = None) -> dict[str, Any]:
    """The module tree nested by ``named_children()``; ``depth`` limits how deep children are included.

    ``children`` is a list when loaded, ``None`` when cut off by ``depth`` (the
    node's ``child_count`` still says how many there are).
    """
    if depth is not None and depth < 0:
        raise InvalidRequest("depth must be >= 0", field="depth")
    index = ModuleIndex(model)
    entry = index.by_path.get(path)
    if entry is None:
        raise NotFound(f"no module at path {path!r}", path=path)
    return index.node(entry, depth)


def search_tree(model: nn.Module, query: str, limit: int = 500) -> dict[str, Any]:
    """Nodes whose path, name or class contains ``query`` (case-insensitive), with their ancestors.

    Returns ``{"tree": pruned tree, "matches": [paths], "truncated": bool}``.
    """
    q = query.strip().lower()
    if not q:
        raise InvalidRequest("search query is empty", field="q")
    index = ModuleIndex(model)
    matches: list[str] = []
    truncated = False
    for path, entry in index.by_path.items():
        if q in path.lower() or q in type(entry.module).__name__.lower():
            if len(matches) >= limit:
                truncated = True
                break
            matches.append(path)
    keep: set[str] = set()
    for m in matches:
        keep.update(_prefixes(m) if m else [""])

    def prune(entry: _Entry) -> dict[str, Any]:
        node = index.node(entry, 0)
        node["children"] = [prune(c) for c in entry.children if c.path in keep]
        node["match"] = entry.path in matches_set
        return node

    matches_set = set(matches)
    return {"query": query, "matches": matches, "truncated": truncated, "tree": prune(index.root)}


def modules_flat(model: nn.Module) -> dict[str, Any]:
    """``named_modules()`` (each module once) next to ``children()``: the flat view."""
    index = ModuleIndex(model)
    rows = []
    for path, module in model.named_modules():
        entry = index.by_path[path]
        rows.append(
            {
                "path": path,
                "class": type(module).__name__,
                "depth": entry.depth,
                "params_own": entry.params_own,
                "params_total": entry.params_total,
                "also_at": [p for p in index.paths_of[id(module)] if p != path],
            }
        )
    return {
        "children": [{"name": n, "class": type(m).__name__} for n, m in model.named_children()],
        "modules": rows,
        "named_modules_count": len(rows),
        "occurrences": len(index.by_path),
    }


# --------------------------------------------------------------------------- tables


def _shared_names(named: list[tuple[str, torch.Tensor]]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    for n, t in named:
        names[id(t)].append(n)
    return names


def parameters_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per name of ``named_parameters(remove_duplicate=False)``."""
    named = list(model.named_parameters(remove_duplicate=False))
    names = _shared_names(named)
    rows = []
    for n, p in named:
        same = names[id(p)]
        lazy = is_uninitialized(p)
        rows.append(
            {
                "name": n,
                "shape": shape_of(p),
                "dtype": dtype_name(p.dtype),
                "device": str(p.device),
                "requires_grad": p.requires_grad,
                "numel": numel(p),
                "bytes": nbytes(p),
                "shared_with": [o for o in same if o != n] if len(same) > 1 else [],
                "uninitialized": lazy,
            }
        )
    return rows


def buffers_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per name of ``named_buffers(remove_duplicate=False)``."""
    named = list(model.named_buffers(remove_duplicate=False))
    names = _shared_names(named)
    non_persistent = _non_persistent_names(model)
    rows = []
    for n, b in named:
        same = names[id(b)]
        rows.append(
            {
                "name": n,
                "shape": shape_of(b),
                "dtype": dtype_name(b.dtype),
                "device": str(b.device),
                "persistent": n not in non_persistent,
                "numel": numel(b),
                "bytes": nbytes(b),
                "shared_with": [o for o in same if o != n] if len(same) > 1 else [],
                "uninitialized": is_uninitialized(b),
            }
        )
    return rows
