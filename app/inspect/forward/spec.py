"""Example-input specs: the JSON form, parsed within budgets, and turned into (fake or real) tensors.

The JSON form (issue 10)::

    {"args": [T, ...], "kwargs": {"name": T}}     either key may be left out
    T = {"shape": [1, 3, 224, 224], "dtype": "float32"}   dtype defaults to float32;
        integer dtypes take optional "low" / "high" (values drawn from [low, high))
    [[1, 3, 224, 224], [1, 10]]                   shorthand: float32 positional args

Lists and dicts of ``T`` nest (a dict is a ``T`` when it has a ``"shape"`` key);
JSON scalars (numbers, booleans, strings, null) pass through as Python values,
e.g. ``{"kwargs": {"input_ids": {...}, "use_cache": false}}``. Every unfit value
is an ``InvalidRequest`` (422) naming its field (``inputs.kwargs.x.shape[1]``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.structure import dtype_name

# Budgets: a hostile spec is a 422 before anything is allocated (fake tensors cost no memory,
# but a real forward on a copy would, and a 2**40-element shape is nobody's example input).
MAX_DEPTH = 32  # nesting of lists/dicts
MAX_TENSOR_ELEMENTS = 2**31  # in one tensor
MAX_RANK = 32
MAX_LEAVES = 10_000  # tensors + scalars in one spec
MAX_STRING = 10_000  # characters of a string value
MAX_KEY = 200  # characters of a dict key

# Names a user may write (torch's own names, without the ``torch.`` prefix), and common aliases.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
ALIASES: dict[str, str] = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
}
# Default value range of integer inputs: [0, 2) is a valid index into anything (an Embedding
# of any size, a class label of any task). Give "high" to draw token ids from a vocabulary.
DEFAULT_LOW, DEFAULT_HIGH = 0, 2


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One example tensor: shape, dtype and (for integers) the range its values come from."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    low: int | None = None
    high: int | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_integer(self) -> bool:
        return not self.dtype.is_floating_point and not self.dtype.is_complex and self.dtype != torch.bool

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": dtype_name(self.dtype)}
        if self.is_integer:
            out["low"] = DEFAULT_LOW if self.low is None else self.low
            out["high"] = DEFAULT_HIGH if self.high is None else self.high
        return out


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value that is not JSON (a callable's cache object...): shown by type and repr, not re-creatable."""

    type: str
    repr: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "repr": self.repr}


# A node of a spec: a TensorSpec, an Opaque, a JSON scalar, or a list/dict of nodes.
Node = Any


@dataclass(frozen=True)
class InputSpec:
    """Positional and keyword example inputs, as specs (no tensors allocated)."""

    args: tuple[Node, ...] = ()
    kwargs: Mapping[str, Node] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The resolved JSON form: every ``T`` spelled out (dtype, and low/high for integers)."""
        return {"args": [_node_json(a) for a in self.args], "kwargs": {k: _node_json(v) for k, v in self.kwargs.items()}}

    def tensors(self) -> list[TensorSpec]:
        found: list[TensorSpec] = []
        _walk(list(self.args) + list(self.kwargs.values()), found)
        return found

    def total_elements(self) -> int:
        return sum(t.numel for t in self.tensors())

    def short(self) -> str:
        """``input_ids=[1, 16] int64`` style, for messages and the CLI."""
        parts = [short_node(a) for a in self.args] + [f"{k}={short_node(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts) or "(no inputs)"


def _walk(node: Node, found: list[TensorSpec]) -> None:
    if isinstance(node, TensorSpec):
        found.append(node)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item, found)
    elif isinstance(node, dict):
        for item in node.values():
            _walk(item, found)


def _node_json(node: Node) -> Any:
    if isinstance(node, TensorSpec | Opaque):
        return node.to_json()
    if isinstance(node, list | tuple):
        return [_node_json(n) for n in node]
    if isinstance(node, dict):
        return {k: _node_json(v) for k, v in node.items()}
    return node


def short_node(node: Node) -> str:
    if isinstance(node, TensorSpec):
        dt = "" if node.dtype == torch.float32 else " " + dtype_name(node.dtype)
        return "[" + ", ".join(str(s) for s in node.shape) + "]" + dt
    if isinstance(node, Opaque):
        return node.type
    if isinstance(node, list | tuple):
        return "(" + ", ".join(short_node(n) for n in node) + ")"
    if isinstance(node, dict):
        return "{" + ", ".join(f"{k}: {short_node(v)}" for k, v in node.items()) + "}"
    return repr(node)


# --------------------------------------------------------------------------- parsing


class _Parser:
    """Walks untrusted JSON once, counting leaves, and names the field of the first unfit value."""

    def __init__(self) -> None:
        self.leaves = 0

    def fail(self, field: str, message: str) -> InvalidRequest:
        return InvalidRequest(f"{field}: {message}", field=field)

    def leaf(self, field: str) -> None:
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise self.fail(field, f"more than {MAX_LEAVES:,} values in one input spec (max_leaves)")

    def node(self, value: Any, field: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(field, f"nested deeper than {MAX_DEPTH} levels (max_depth)")
        if isinstance(value, dict):
            if "shape" in value:
                return self.tensor(value, field)
            if "repr" in value and "type" in value:
                raise self.fail(field, f"a {value.get('type')!s:.60} value (shown by its repr) cannot be re-created from JSON")
            out: dict[str, Node] = {}
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > MAX_KEY:
                    raise self.fail(field, f"dict keys must be strings of at most {MAX_KEY} characters")
                out[key] = self.node(item, f"{field}.{key}", depth + 1)
            return out
        if isinstance(value, list):
            return [self.node(item, f"{field}[{i}]", depth + 1) for i, item in enumerate(value)]
        self.leaf(field)
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(field, "numbers must be finite")
            return value
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise self.fail(field, f"strings are limited to {MAX_STRING:,} characters")
            return value
        raise self.fail(field, f"unexpected {type(value).__name__}")

    def shape(self, value: Any, field: str) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise self.fail(field, "shape must be a list of sizes, e.g. [1, 3, 224, 224]")
        if len(value) > MAX_RANK:
            raise self.fail(field, f"at most {MAX_RANK} dimensions (max_rank)")
        dims = []
        for i, d in enumerate(value):
            if isinstance(d, bool) or not isinstance(d, int):
                raise self.fail(f"{field}[{i}]", f"sizes are integers, got {_kind(d)}")
            if d < 0:
                raise self.fail(f"{field}[{i}]", f"sizes cannot be negative, got {d}")
            dims.append(d)
        numel = math.prod(dims)
        if numel > MAX_TENSOR_ELEMENTS:
            raise self.fail(field, f"{numel:,} elements is more than 2**31 in one tensor (max_tensor_elements)")
        return tuple(dims)

    def tensor(self, value: dict[str, Any], field: str) -> TensorSpec:
        self.leaf(field)
        unknown = set(value) - {"shape", "dtype", "low", "high"}
        if unknown:
            raise self.fail(field, f"unknown key(s) {sorted(unknown)!r:.200}; a tensor has shape, dtype, low, high")
        shape = self.shape(value["shape"], f"{field}.shape")
        dtype = parse_dtype(value.get("dtype", "float32"), f"{field}.dtype")
        low, high = value.get("low"), value.get("high")
        spec = TensorSpec(shape, dtype)
        if low is None and high is None:
            return spec
        if not spec.is_integer:
            raise self.fail(field, f"low/high apply to integer dtypes only, not {dtype_name(dtype)}")
        for name, v in (("low", low), ("high", high)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or abs(v) > 2**63 - 1):
                raise self.fail(f"{field}.{name}", f"must be an integer, got {_kind(v)}")
        lo = DEFAULT_LOW if low is None else low
        hi = (lo + DEFAULT_HIGH if low is not None else DEFAULT_HIGH) if high is None else high
        if hi <= lo:
            raise self.fail(field, f"high must be greater than low (values come from [low, high)), got [{lo}, {hi})")
        info = torch.iinfo(dtype)
        if lo < info.min or hi - 1 > info.max:
            raise self.fail(field, f"[{lo}, {hi}) does not fit {dtype_name(dtype)} ([{info.min}, {info.max}])")
        return TensorSpec(shape, dtype, lo, hi)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_dtype(value: Any, field: str = "dtype") -> torch.dtype:
    """``"float32"``, ``"torch.float32"`` or an alias (``"long"``) -> ``torch.float32``; else a 422."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{field}: dtype must be a string like \"float32\"", field=field)
    name = value.strip().removeprefix("torch.")
    name = ALIASES.get(name, name)
    dtype = DTYPES.get(name)
    if dtype is None:
        raise InvalidRequest(
            f"{field}: unknown dtype {value[:40]!r}; one of {', '.join(DTYPES)}", field=field
        )
    return dtype


def parse_inputs(data: Any, field: str = "inputs") -> InputSpec:
    """The JSON form (or the bare list-of-shapes shorthand) -> an InputSpec; unfit values are a 422."""
    parser = _Parser()
    if isinstance(data, list):
        # Shorthand: a list of shapes is float32 positional args; items may also be full T's.
        args: list[Node] = []
        for i, item in enumerate(data):
            where = f"{field}[{i}]"
            if isinstance(item, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in item):
                parser.leaf(where)
                args.append(TensorSpec(parser.shape(item, where)))
            else:
                args.append(parser.node(item, where, 1))
        return InputSpec(tuple(args), {})
    if not isinstance(data, dict):
        raise InvalidRequest(
            f'{field}: expected {{"args": [...], "kwargs": {{...}}}} or a list of shapes, got {_kind(data)}',
            field=field,
        )
    if "shape" in data:  # one tensor, the only positional argument
        return InputSpec((parser.tensor(data, field),), {})
    unknown = set(data) - {"args", "kwargs"}
    if unknown:
        raise InvalidRequest(
            f"{field}: unknown key(s) {sorted(unknown)!r:.200}; expected args and/or kwargs", field=field
        )
    raw_args = data.get("args", [])
    raw_kwargs = data.get("kwargs", {})
    if not isinstance(raw_args, list):
        raise InvalidRequest(f"{field}.args: must be a list, got {_kind(raw_args)}", field=f"{field}.args")
    if not isinstance(raw_kwargs, dict):
        raise InvalidRequest(f"{field}.kwargs: must be an object, got {_kind(raw_kwargs)}", field=f"{field}.kwargs")
    args_t = tuple(parser.node(a, f"{field}.args[{i}]", 1) for i, a in enumerate(raw_args))
    kwargs_d = parser.node(raw_kwargs, f"{field}.kwargs", 1)
    for key in kwargs_d:
        if not key.isidentifier():
            raise InvalidRequest(f"{field}.kwargs: {key[:60]!r} is not an argument name", field=f"{field}.kwargs")
    return InputSpec(args_t, kwargs_d)


# --------------------------------------------------------------------------- values


def build_values(spec: InputSpec, make: Callable[[TensorSpec], torch.Tensor]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` with every TensorSpec replaced by ``make(spec)`` (a fake or a real tensor)."""

    def build(node: Node) -> Any:
        if isinstance(node, TensorSpec):
            return make(node)
        if isinstance(node, Opaque):
            raise InvalidRequest(f"a {node.type} input cannot be re-created from its description")
        if isinstance(node, tuple):
            return tuple(build(n) for n in node)
        if isinstance(node, list):
            return [build(n) for n in node]
        if isinstance(node, dict):
            return {k: build(v) for k, v in node.items()}
        return node

    return tuple(build(a) for a in spec.args), {k: build(v) for k, v in spec.kwargs.items()}


def empty_tensor(spec: TensorSpec, device: torch.device) -> torch.Tensor:
    """A tensor of the spec's shape and dtype with no meaningful values (under FakeTensorMode: a fake)."""
    return torch.empty(spec.shape, dtype=spec.dtype, device=device)


def random_tensor(spec: TensorSpec, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """Real values for a real forward: normal floats, integers from [low, high). Uses only ``generator``."""
    if spec.dtype == torch.bool:
        return torch.randint(0, 2, spec.shape, generator=generator).bool().to(device)
    if spec.is_integer:
        low = DEFAULT_LOW if spec.low is None else spec.low
        high = DEFAULT_HIGH if spec.high is None else spec.high
        return torch.randint(low, high, spec.shape, generator=generator, dtype=torch.int64).to(device, spec.dtype)
    return torch.randn(spec.shape, generator=generator, dtype=spec.dtype).to(device)


def spec_of_values(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> InputSpec:
    """Describe real inputs (from a callable) as a spec: tensors by shape/dtype (integer range from the values)."""

    def spec(value: Any, depth: int) -> Node:
        if isinstance(value, torch.Tensor):
            t = TensorSpec(tuple(value.shape), value.dtype)
            if t.is_integer and value.numel() and not value.is_meta:
                return TensorSpec(t.shape, t.dtype, int(value.min()), int(value.max()) + 1)
            return t
        if depth >= MAX_DEPTH:
            return Opaque(type(value).__name__, "…")
        if isinstance(value, list | tuple):
            return [spec(v, depth + 1) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: spec(v, depth + 1) for k, v in value.items()}
        if value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            return value
        return Opaque(type(value).__name__, _short_repr(value))

    return InputSpec(tuple(spec(a, 1) for a in args), {k: spec(v, 1) for k, v in kwargs.items()})


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may raise
        text = f"<repr raised {type(exc).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
