"""A model's outputs as a flat, named tuple of tensors, whatever structure ``forward`` returns.

``torch.export`` accepts only outputs it can flatten (tensors in tuples, lists, dicts, and
registered pytree classes); a Hugging Face LM returns a ``DynamicCache`` among its outputs,
which is none of these. Both captures run the model through ``OutputsOf``, which returns
every tensor it finds (in containers, dataclasses, ``ModelOutput``s, and one level of plain
objects' attributes) and remembers their names (``logits``, ``past_key_values.layers.0.keys``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

MAX_DEPTH = 8
MAX_OUTPUTS = 4096


def named_tensors(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Every tensor in ``value`` with a dotted name, in a stable order (first found first)."""
    found: list[tuple[str, torch.Tensor]] = []
    _walk(value, prefix, depth, found, set())
    return found


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _walk(value: Any, prefix: str, depth: int, found: list[tuple[str, torch.Tensor]], seen: set[int]) -> None:
    if len(found) >= MAX_OUTPUTS:
        return
    if isinstance(value, torch.Tensor):
        found.append((prefix or "output", value))
        return
    if depth >= MAX_DEPTH or value is None or isinstance(value, str | bytes | int | float | bool):
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, dict) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        for key in list(value.keys()):
            _walk(value[key], _join(prefix, key), depth + 1, found, seen)
    elif isinstance(value, list | tuple):
        fields = getattr(value, "_fields", None)  # namedtuple
        for i, item in enumerate(value):
            _walk(item, _join(prefix, fields[i] if fields else i), depth + 1, found, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), _join(prefix, f.name), depth + 1, found, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, nn.Module | type):
        # Plain objects (a KV cache): their attributes, e.g. DynamicCache.layers[i].keys.
        for key, item in vars(value).items():
            if not key.startswith("_"):
                _walk(item, _join(prefix, key), depth + 1, found, seen)


class OutputsOf(nn.Module):
    """Runs ``model`` and returns its output tensors as a flat tuple; ``names`` says which is which.

    The served model becomes this wrapper's child ``model`` (the wrapper holds a reference;
    the model itself is not changed): module paths seen through it start with ``model``.
    """

    PREFIX = "model"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names: list[str] = []

    def forward(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        found = named_tensors(self.model(*args, **kwargs))
        # In place: torch.export puts copies of the wrapper's attributes back after tracing, so
        # callers keep a reference to this list from before (``names = wrapper.names``).
        self.names[:] = [name for name, _ in found]
        return tuple(t for _, t in found)


def strip_prefix(path: str) -> str | None:
    """A path seen through ``OutputsOf`` -> the served model's path; ``None`` for the wrapper itself."""
    if path == OutputsOf.PREFIX:
        return ""
    if path.startswith(OutputsOf.PREFIX + "."):
        return path[len(OutputsOf.PREFIX) + 1 :]
    return None
