"""Names a capture gives things: module paths and tensor names as ``named_modules()`` /
``named_parameters()`` spell them, and the model's inputs as the user passed them.

A module reachable at two paths (``first`` and ``second`` holding one object) is named by
its first path, as ``named_modules()`` names it; a tied weight by its first name. Modules
torch does not register (kept in a plain list) have no path: their ops belong to the
registered module around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from torchscope.inspect.graph.records import Kind


@dataclass
class Names:
    root: nn.Module
    paths: dict[int, str]  # id(module) -> first path in named_modules()
    classes: dict[str, str]  # path -> class name
    tensors: dict[int, tuple[str, Kind]]  # id(parameter or buffer) -> (first name, kind)

    @classmethod
    def of(cls, root: nn.Module) -> Names:
        paths: dict[int, str] = {}
        classes: dict[str, str] = {}
        for path, m in root.named_modules():
            paths[id(m)] = path
            classes[path] = type(m).__name__
        tensors: dict[int, tuple[str, Kind]] = {}
        for name, p in root.named_parameters():
            tensors.setdefault(id(p), (name, Kind.param))
        for name, b in root.named_buffers():
            tensors.setdefault(id(b), (name, Kind.buffer))
        return cls(root, paths, classes, tensors)

    def module_path(self, dotted: str) -> str | None:
        """A path as some tracer spells it -> the ``named_modules()`` path of that object, if registered."""
        if dotted in self.classes:
            return dotted
        try:
            m = self.root.get_submodule(dotted)
        except (AttributeError, TypeError, ValueError):
            return None
        return self.paths.get(id(m))

    def tensor_name(self, dotted: str) -> tuple[str, Kind] | None:
        """``lm_head.weight`` -> ``("tok_emb.weight", param)`` when tied; ``None`` if not a registered tensor."""
        owner, _, attr = dotted.rpartition(".")
        try:
            m = self.root.get_submodule(owner) if owner else self.root
        except (AttributeError, TypeError, ValueError):
            return None
        t = m._parameters.get(attr) if attr in m._parameters else m._buffers.get(attr)
        return self.tensors.get(id(t)) if t is not None else None


def input_names(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every leaf of ``(args, kwargs)`` with a readable name: ``x``, ``args[1]``, ``input_ids``, ``batch["img"]``."""
    leaves, _ = pytree.tree_flatten_with_path((args, kwargs))
    named = []
    for path, leaf in leaves:
        named.append((_readable(path), leaf))
    return named


def _readable(path: tuple[Any, ...]) -> str:
    if len(path) < 2:
        return "inputs"
    top, first, *tail = path
    head = f"args[{getattr(first, 'idx', '?')}]" if getattr(top, "idx", None) == 0 else str(getattr(first, "key", "?"))
    return head + "".join(pytree.keystr((k,)) for k in tail)


def tensor_leaves(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    return [(n, v) for n, v in input_names(args, kwargs) if isinstance(v, torch.Tensor)]
