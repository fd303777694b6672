"""The module tree as JSON-ready nodes (to any depth, bounded by node count) and its search."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from torch import nn

from torchscope.inspect.errors import InvalidRequest, NotFound
from torchscope.inspect.structure.gc_pause import paused_gc
from torchscope.inspect.structure.walk import Entry, Walk, prefixes


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

    def node(self, entry: Entry, depth: int | None) -> dict[str, Any]:
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
        keep.update(prefixes(m) if m else [""])

    def prune(entry: Entry) -> dict[str, Any]:
        node = index.node(entry, 0)
        node["children"] = [prune(c) for c in entry.children if c.path in keep]
        node["match"] = entry.path in matches_set
        return node

    matches_set = set(matches)
    return {"query": query, "matches": matches, "truncated": truncated, "tree": prune(index.root)}
