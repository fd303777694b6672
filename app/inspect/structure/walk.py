"""One walk over the module tree: every occurrence, own and subtree counts, tied tensors counted once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from torchscope.inspect.structure.tensor_facts import LAZY_TYPES, is_uninitialized, numel


@dataclass(eq=False, slots=True)
class Entry:
    """One occurrence of a module in the tree (a shared module has several)."""

    path: str
    name: str
    module: nn.Module
    depth: int
    children: list[Entry]
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
        self.by_path: dict[str, Entry] = {}
        self.paths_of: dict[int, list[str]] = {}
        self.params: list[tuple[str, torch.Tensor]] = []
        self.buffers: list[tuple[str, torch.Tensor]] = []
        self.non_persistent: set[str] = set()
        on_stack: set[int] = set()
        by_path, paths_of, params, buffers = self.by_path, self.paths_of, self.params, self.buffers
        non_persistent = self.non_persistent
        lazy_types = LAZY_TYPES
        entry_cls = Entry

        def size(t: torch.Tensor) -> int:
            cls = type(t)
            lazy = lazy_types.get(cls)
            if lazy is None:
                lazy = is_uninitialized(t)
            return 0 if lazy else t.numel()

        # Hot loop (one call per module occurrence): locals only, no per-module sets.
        # A tensor registered twice in one module is handled by _duplicate_correction.
        def visit(module: nn.Module, path: str, name: str, depth: int) -> Entry:
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


def prefixes(module_path: str) -> list[str]:
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
            for prefix in prefixes(mp):
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
