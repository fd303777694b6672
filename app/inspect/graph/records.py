"""What a graph capture records: a flat dataflow graph whose every node knows the module calls around it.

A capture (``export.py`` or ``hooks.py``) produces ``Atom``s (ops, the model's inputs and
outputs, parameters and buffers) and ``Flow``s (one tensor going from the atom that made
it to an atom that reads it). Each atom carries its ``scope``: the module *calls* it ran
inside, outermost first, without the model itself. ``view.py`` folds this flat graph into
the hierarchical one the page draws, for any module call.

A module call is a ``Frame``: ``path`` as in ``named_modules()``, ``call`` counting from
0 per path (a module reused at two places, or called in a loop, has one frame per call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch

from torchscope.inspect.structure import dtype_name


class Method(StrEnum):
    export = "export"  # torch.export.export(strict=False): every ATen op, with its module stack
    hooks = "hooks"  # forward hooks: module calls, and the ops that join two tensors


class Kind(StrEnum):
    module = "module"
    op = "op"
    input = "input"
    output = "output"
    param = "param"
    buffer = "buffer"


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """A tensor as the graph shows it: shape and dtype (no values: captures run on fake tensors)."""

    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorMeta:
        return cls(tuple(int(s) for s in t.shape), dtype_name(t.dtype))

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * _itemsize(self.dtype)

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}


_ITEMSIZE: dict[str, int] = {}


def _itemsize(dtype: str) -> int:
    size = _ITEMSIZE.get(dtype)
    if size is None:
        try:
            size = torch.empty((), dtype=getattr(torch, dtype), device="meta").element_size()
        except (AttributeError, TypeError, RuntimeError):
            size = 0
        _ITEMSIZE[dtype] = size
    return size


@dataclass(frozen=True, slots=True)
class Frame:
    """One call of one module: ``path`` (``named_modules()``), ``call`` (0, 1, ... per path), class."""

    path: str
    call: int
    cls: str

    @property
    def key(self) -> str:
        return f"{self.path}#{self.call}"


@dataclass(slots=True)
class Atom:
    """One node of the flat graph.

    ``scope``: the module calls it ran in, outermost first (the model itself left out).
    ``outs``: its output tensors (``Flow.index`` points into them). ``tensors``: the
    parameters/buffers an op reads, by canonical name (first name in ``named_parameters()``).
    """

    id: str
    kind: Kind
    label: str
    target: str
    scope: tuple[Frame, ...] = ()
    outs: tuple[TensorMeta, ...] = ()
    flops: int = 0
    tensors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flow:
    """A tensor going from ``src`` (its output ``index``) to ``dst``.

    ``meta`` is the tensor as ``dst`` received it. ``via``: ops folded into this edge (a
    hooks capture draws ``x.view(...)`` between two modules as an edge, not as a node).
    """

    src: str
    index: int
    dst: str
    meta: TensorMeta
    via: tuple[str, ...] = ()

    @property
    def value(self) -> str:
        """Which tensor this is, the same at every level of the hierarchy (ids of expanded views' ports)."""
        return f"{self.src}:{self.index}"


@dataclass
class Capture:
    """A captured graph: atoms in execution order, flows, and every module call seen."""

    method: Method
    reason: str  # why this method: export worked, or why it failed and hooks were used
    atoms: dict[str, Atom]
    flows: list[Flow]
    frames: dict[str, Frame]  # by Frame.key, in call order
    seconds: float = 0.0
    total_flops: int = 0
    inputs: Any = None  # the resolved input spec (JSON) it was captured with
    inputs_note: str = ""
    warnings: list[str] = field(default_factory=list)
    # frame key -> FLOPs of the whole call (own ops and every call inside it)
    frame_flops: dict[str, int] = field(default_factory=dict)


def first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (capped): how a failure is told in one line."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    line = line if len(line) <= 300 else line[:297] + "..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
