"""Structure of an nn.Module: summary totals, the module tree, parameter and buffer tables.

Counting follows torch exactly: a tensor reachable under several names (tied
weights, a module reused at two paths) is counted once, as
``sum(p.numel() for p in model.parameters())`` does, because ``parameters()``
de-duplicates by identity. Uninitialized lazy parameters count 0 and are
flagged. Nothing here changes the model.
"""

from __future__ import annotations

import functools
import gc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypedDict, TypeVar

import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.errors import InvalidRequest, NotFound

_P = ParamSpec("_P")
_R = TypeVar("_R")


def paused_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic GC paused.

    These views allocate one small dict per module; on a 20,000-module model the
    allocations trigger full collections that re-scan every module object and
    cost more than the work itself (measured: 3-4x). Nothing here makes cycles.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


_DTYPE_NAMES: dict[torch.dtype, str] = {}
_LAZY_TYPES: dict[type, bool] = {}


def is_uninitialized(t: torch.Tensor) -> bool:
    """Lazy modules hold placeholders until their first forward."""
    # Cached per type: isinstance on Parameter subclasses goes through a slow metaclass hook.
    cls = type(t)
    lazy = _LAZY_TYPES.get(cls)
    if lazy is None:
        lazy = _LAZY_TYPES[cls] = issubclass(cls, UninitializedTensorMixin)
    return lazy


def numel(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel()


def nbytes(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel() * t.element_size()


def shape_of(t: torch.Tensor) -> list[int] | None:
    return None if is_uninitialized(t) else list(t.shape)


@dataclass(eq=False, slots=True)
class _Entry:
    """One occurrence of a module in the tree (a shared module has several)."""

    path: str
    name: str
    module: nn.Module
    depth: int
    children: list[_Entry]
    params_own: int = 0
    buffers_own: int = 0
    params_total: int = 0
    buffers_total: int = 0
    frozen_total: int = 0  # elements of requires_grad=False parameters in the subtree


class Walk:
    """One pass over ``_modules``, in the order of ``named_modules(remove_duplicate=False)``.

    Everything the structure views need comes from this single walk (torch's own
    ``named_*`` generators each re-walk the tree; on 20,000 modules that costs
    ~25 ms apiece). ``params``/``buffers`` list every (name, tensor, owner) in the
    order ``named_parameters(remove_duplicate=False)`` / ``named_buffers(...)`` give.
    """

    __slots__ = ("buffers", "by_path", "non_persistent", "params", "paths_of", "root")

    def __init__(self, model: nn.Module) -> None:
        self.by_path: dict[str, _Entry] = {}
        self.paths_of: dict[int, list[str]] = {}
        self.params: list[tuple[str, torch.Tensor]] = []
        self.buffers: list[tuple[str, torch.Tensor]] = []
        self.non_persistent: set[str] = set()
        on_stack: set[int] = set()
        by_path, paths_of, params, buffers = self.by_path, self.paths_of, self.params, self.buffers
        non_persistent = self.non_persistent
        lazy_types = _LAZY_TYPES
        entry_cls = _Entry

        def size(t: torch.Tensor) -> int:
            cls = type(t)
            lazy = lazy_types.get(cls)
            if lazy is None:
                lazy = is_uninitialized(t)
            return 0 if lazy else t.numel()

        # Hot loop (one call per module occurrence): locals only, no per-module sets.
        # A tensor registered twice in one module is handled by _duplicate_correction.
        def visit(module: nn.Module, path: str, name: str, depth: int) -> _Entry:
            key = id(module)
            seen_paths = paths_of.get(key)
            if seen_paths is None:
                paths_of[key] = [path]
            else:
                seen_paths.append(path)
            entry = entry_cls(path, name, module, depth, [])
            by_path[path] = entry
            prefix = path + "." if path else ""
            p_own = b_own = f_own = 0
            for pname, p in module._parameters.items():
                if p is not None:
                    params.append((prefix + pname, p))
                    n = size(p)
                    p_own += n
                    if not p.requires_grad:
                        f_own += n
            if module._buffers:
                np_set = module._non_persistent_buffers_set
                for bname, b in module._buffers.items():
                    if b is not None:
                        buffers.append((prefix + bname, b))
                        if bname in np_set:
                            non_persistent.add(prefix + bname)
                        b_own += size(b)
            children = module._modules
            if children:
                on_stack.add(key)
                kids = entry.children
                for child_name, child in children.items():
                    if child is None or id(child) in on_stack:  # None placeholders; guard against cycles
                        continue
                    c = visit(child, prefix + child_name, child_name, depth + 1)
                    kids.append(c)
                    entry.params_total += c.params_total
                    entry.buffers_total += c.buffers_total
                    entry.frozen_total += c.frozen_total
                on_stack.discard(key)
            entry.params_own = p_own
            entry.buffers_own = b_own
            entry.params_total += p_own
            entry.buffers_total += b_own
            entry.frozen_total += f_own
            return entry

        self.root = visit(model, "", "", 0)
        frozen = [(n, t) for n, t in self.params if not t.requires_grad]
        for table, attr in ((self.params, "params_total"), (self.buffers, "buffers_total"), (frozen, "frozen_total")):
            for path, n in _duplicate_correction(table).items():
                entry = self.by_path.get(path)
                if entry is not None:
                    setattr(entry, attr, getattr(entry, attr) - n)
        # Own counts too: one tensor registered twice on one module counts once there (issue 12).
        for table, attr in ((self.params, "params_own"), (self.buffers, "buffers_own")):
            for path, n in _own_duplicates(table).items():
                entry = self.by_path.get(path)
                if entry is not None:
                    setattr(entry, attr, getattr(entry, attr) - n)

    def distinct(self, table: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
        """First name of each distinct tensor, as ``named_parameters()`` (remove_duplicate=True) gives."""
        seen: set[int] = set()
        out = []
        for name, t in table:
            if id(t) not in seen:
                seen.add(id(t))
                out.append((name, t))
        return out

    def module_count(self) -> int:
        """``len(list(named_modules()))``: each module object once."""
        return len(self.paths_of)


def _prefixes(module_path: str) -> list[str]:
    """``"a.b"`` -> ``["", "a", "a.b"]``: every tree node that contains that module."""
    if not module_path:
        return [""]
    parts = module_path.split(".")
    return ["", *(".".join(parts[: i + 1]) for i in range(len(parts)))]


def _duplicate_correction(named: list[tuple[str, torch.Tensor]]) -> dict[str, int]:
    """Elements to subtract per node so that a tensor seen at several names counts once there."""
    correction: dict[str, int] = defaultdict(int)
    if len({id(t) for _, t in named}) == len(named):  # the common case: nothing shared
        return correction
    occurrences: dict[int, list[str]] = {}
    sizes: dict[int, int] = {}
    dup = False
    for name, t in named:
        key = id(t)
        where = occurrences.get(key)
        if where is None:
            occurrences[key] = [name.rpartition(".")[0]]
        else:
            where.append(name.rpartition(".")[0])
            sizes[key] = numel(t)
            dup = True
    if not dup:
        return correction
    for key, size in sizes.items():
        counts: dict[str, int] = defaultdict(int)
        for mp in occurrences[key]:
            for prefix in _prefixes(mp):
                counts[prefix] += 1
        for prefix, c in counts.items():
            if c > 1:
                correction[prefix] += (c - 1) * size
    return correction


def _own_duplicates(named: list[tuple[str, torch.Tensor]]) -> dict[str, int]:
    """Elements to subtract from a module's own count for tensors it registers under several local names."""
    out: dict[str, int] = defaultdict(int)
    if len({id(t) for _, t in named}) == len(named):  # the common case: nothing shared anywhere
        return out
    seen: set[tuple[str, int]] = set()
    for name, t in named:
        key = (name.rpartition(".")[0], id(t))
        if key in seen:
            out[key[0]] += numel(t)
        seen.add(key)
    return out


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


# --------------------------------------------------------------------------- tree


class ModuleIndex:
    """The tree view over a Walk: nodes as JSON-ready dicts, to any depth."""

    def __init__(self, model: nn.Module, walk: Walk | None = None) -> None:
        self.walk = walk or Walk(model)
        self.by_path = self.walk.by_path
        self.paths_of = self.walk.paths_of
        self.root = self.walk.root
        # Tied parameters: module path -> {own name: [the same tensor's other full names]}.
        self.tied: dict[str, dict[str, list[str]]] = defaultdict(dict)
        params = self.walk.params
        if len({id(t) for _, t in params}) != len(params):
            names: dict[int, list[str]] = defaultdict(list)
            for full, t in params:
                names[id(t)].append(full)
            for same in names.values():
                if len(same) > 1:
                    for full in same:
                        module_path, _, local = full.rpartition(".")
                        self.tied[module_path][local] = [o for o in same if o != full]

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
            "shared": len(paths) > 1,
            "params_frozen": entry.frozen_total,
        }
        # Rare facts only where they hold: a 20,000-node tree is ~20% smaller for it.
        if len(paths) > 1:
            node["shared_with"] = [p for p in paths if p != entry.path]
        if not module.training:
            node["training"] = False
        tied = self.tied.get(entry.path)
        if tied:
            node["tied"] = tied
        own = [k for k, v in module._parameters.items() if v is not None]
        own += [k for k, v in module._buffers.items() if v is not None]
        if own:
            node["tensors"] = own  # its own parameters, then buffers (local names)
        if depth is None or depth > 0:
            next_depth = None if depth is None else depth - 1
            node["children"] = [self.node(c, next_depth) for c in entry.children]
        else:
            node["children"] = None  # not loaded: fetch with ?path=<path>
        return node


@paused_gc
def tree(
    model: nn.Module,
    path: str = "",
    depth: int | None = None,
    max_nodes: int | None = None,
    index: ModuleIndex | None = None,
) -> dict[str, Any]:
    """The module tree nested by ``named_children()`` (shared modules at every path).

    ``depth`` limits how many levels of children are included; ``max_nodes``
    stops adding whole levels once the answer would exceed that many nodes (the
    page asks for a bounded first view, then loads subtrees lazily). ``children``
    is a list when loaded, ``None`` when cut off (``child_count`` still tells).
    """
    if depth is not None and depth < 0:
        raise InvalidRequest("depth must be >= 0", field="depth")
    if max_nodes is not None and max_nodes < 1:
        raise InvalidRequest("max_nodes must be >= 1", field="max_nodes")
    index = index or ModuleIndex(model)
    entry = index.by_path.get(path)
    if entry is None:
        raise NotFound(f"no module at path {path!r}", path=path)
    if max_nodes is not None:
        # Whole levels only, breadth first, so the first view is balanced.
        levels = 0
        count = 1
        frontier = [entry]
        while frontier and (depth is None or levels < depth):
            nxt = [c for e in frontier for c in e.children]
            if not nxt or count + len(nxt) > max_nodes:
                break
            count += len(nxt)
            levels += 1
            frontier = nxt
        depth = levels
    return index.node(entry, depth)


@paused_gc
def search_tree(
    model: nn.Module, query: str, limit: int = 500, index: ModuleIndex | None = None
) -> dict[str, Any]:
    """Nodes whose path, name or class contains ``query`` (case-insensitive), with their ancestors.

    Returns ``{"tree": pruned tree, "matches": [paths], "truncated": bool}``.
    """
    q = query.strip().lower()
    if not q:
        raise InvalidRequest("search query is empty", field="q")
    index = index or ModuleIndex(model)
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


# --------------------------------------------------------------------------- tables


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
