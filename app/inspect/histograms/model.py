"""A model's tensors: each distinct parameter and buffer once (tied names as aliases), and their histograms."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchscope.inspect.errors import NotFound
from torchscope.inspect.histograms.batch import histograms
from torchscope.inspect.histograms.records import DEFAULT_BINS, Histogram
from torchscope.inspect.histograms.values import has_values


@dataclass(frozen=True)
class NamedTensor:
    """A parameter or buffer of a model, by its first name, with its other names."""

    name: str
    kind: str  # "parameter" | "buffer"
    module: str  # owning module's path ("" for the root)
    tensor: torch.Tensor
    aliases: tuple[str, ...] = ()


def named_tensors(module: nn.Module) -> list[NamedTensor]:
    """Every distinct parameter and buffer in depth order (the order of ``named_modules``).

    A tensor reachable under several names (tied weights, a module reused at two
    paths) is listed once, under its first name, with the others as ``aliases``.
    """
    first: dict[int, int] = {}
    rows: list[NamedTensor] = []
    aliases: dict[int, list[str]] = {}
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        prefix = f"{mod_name}." if mod_name else ""
        for kind, items in (
            ("parameter", mod._parameters.items()),
            ("buffer", mod._buffers.items()),
        ):
            for local, tensor in items:
                if tensor is None:
                    continue
                full = prefix + local
                key = id(tensor)
                if key in first:
                    aliases.setdefault(key, []).append(full)
                    continue
                first[key] = len(rows)
                rows.append(NamedTensor(full, kind, mod_name, tensor))
    return [
        NamedTensor(r.name, r.kind, r.module, r.tensor, tuple(aliases.get(id(r.tensor), ())))
        for r in rows
    ]


def find_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """A parameter or buffer by any of its names (aliases of tied weights included)."""
    for row in named_tensors(module):
        if name == row.name or name in row.aliases:
            return row.tensor
    raise NotFound(f"no parameter or buffer named {name!r}", tensor=name)


def model_histograms(
    module: nn.Module, bins: int = DEFAULT_BINS, *, stats: bool = True
) -> list[Histogram]:
    """Histograms of every distinct tensor that has values (the fast all-tensors path)."""
    rows = [r for r in named_tensors(module) if has_values(r.tensor) and not r.tensor.is_complex()]
    return histograms(((r.name, r.tensor) for r in rows), bins, stats=stats)
