"""The init catalogue: every public ``torch.nn.init`` function read with ``inspect.signature``, plus overrides."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import nn

DEFAULT_SCHEME = "default"

# calculate_gain's nonlinearities: the Literal on kaiming_*'s ``nonlinearity``
# argument lists them (read below); this is the fallback for a torch without it.
_FALLBACK_NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip


class TensorChoice(StrEnum):
    weight = "weight"
    bias = "bias"
    all = "all"


@dataclass(frozen=True)
class Override:
    """What a signature cannot say about an init function."""

    min_rank: int = 0
    max_rank: int | None = None
    # None: any floating dtype. Integer/bool tensors only take the fill functions.
    dtypes: tuple[torch.dtype, ...] | None = None
    integer_ok: bool = False
    # Also draws from the global RNG (sparse_: torch.randperm without generator=):
    # run under fork_rng seeded with a sub-seed drawn from the plan's generator.
    global_rng: bool = False
    note: str = ""


_FLOATS_FOR_QR = (torch.float32, torch.float64)  # geqrf_cpu has no Half/BFloat16 kernel

OVERRIDES: dict[str, Override] = {
    "uniform_": Override(),
    "normal_": Override(),
    "trunc_normal_": Override(),
    "constant_": Override(integer_ok=True),
    "ones_": Override(integer_ok=True),
    "zeros_": Override(integer_ok=True),
    "eye_": Override(min_rank=2, max_rank=2, integer_ok=True, note="identity matrix"),
    "dirac_": Override(min_rank=3, max_rank=5, integer_ok=True, note="identity convolution"),
    "xavier_uniform_": Override(min_rank=2, note="fan_in and fan_out need >= 2-D"),
    "xavier_normal_": Override(min_rank=2, note="fan_in and fan_out need >= 2-D"),
    "kaiming_uniform_": Override(min_rank=2, note="fan_in and fan_out need >= 2-D"),
    "kaiming_normal_": Override(min_rank=2, note="fan_in and fan_out need >= 2-D"),
    "orthogonal_": Override(min_rank=2, dtypes=_FLOATS_FOR_QR, note="QR: float32/float64 on CPU"),
    "sparse_": Override(
        min_rank=2, max_rank=2, global_rng=True, note="zeros placed with the global RNG"
    ),
}


@dataclass(frozen=True)
class InitArg:
    name: str
    type: str  # "float" | "int" | "str"
    default: Any
    required: bool
    choices: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "choices": list(self.choices) if self.choices is not None else None,
        }


@dataclass(frozen=True)
class InitScheme:
    name: str
    doc: str
    args: tuple[InitArg, ...]
    takes_generator: bool
    min_rank: int
    max_rank: int | None
    dtypes: tuple[str, ...] | None
    integer_ok: bool
    global_rng: bool
    note: str
    fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "doc": self.doc,
            "args": [a.to_dict() for a in self.args],
            "random": self.takes_generator,
            "min_rank": self.min_rank,
            "max_rank": self.max_rank,
            "dtypes": list(self.dtypes) if self.dtypes is not None else None,
            "integer_ok": self.integer_ok,
            "note": self.note,
        }


def _arg_type(annotation: Any, default: Any) -> tuple[str, tuple[str, ...] | None]:
    if typing.get_origin(annotation) is typing.Literal:
        return "str", tuple(str(a) for a in typing.get_args(annotation))
    if annotation is int or (annotation is inspect.Parameter.empty and isinstance(default, int)):
        return "int", None
    if annotation is str or isinstance(default, str):
        return "str", None
    return "float", None


@functools.cache
def nonlinearities() -> tuple[str, ...]:
    """calculate_gain's accepted names, as kaiming_normal_'s signature declares them."""
    hints = typing.get_type_hints(nn.init.kaiming_normal_)
    ann = hints.get("nonlinearity")
    if typing.get_origin(ann) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(ann))
    return _FALLBACK_NONLINEARITIES


def gains() -> dict[str, float]:
    """``calculate_gain(nl)`` for every nonlinearity (leaky_relu at its default slope 0.01)."""
    return {nl: float(nn.init.calculate_gain(nl)) for nl in nonlinearities()}  # type: ignore[arg-type]


@functools.cache
def catalogue() -> dict[str, InitScheme]:
    """Every public in-place function of ``torch.nn.init``, read with inspect.signature."""
    out: dict[str, InitScheme] = {}
    for name, fn in inspect.getmembers(nn.init, inspect.isfunction):
        if name.startswith("_") or not name.endswith("_") or fn.__module__ != nn.init.__name__:
            continue
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # an annotation torch itself cannot resolve: fall back to defaults
            hints = {}
        args = []
        params = list(sig.parameters.values())
        for p in params[1:]:  # the first one is the tensor
            if p.name == "generator" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            required = p.default is inspect.Parameter.empty
            default = None if required else p.default
            kind, choices = _arg_type(hints.get(p.name, inspect.Parameter.empty), default)
            if p.name == "nonlinearity" and choices is None:
                choices = nonlinearities()
            if p.name == "mode" and choices is None:
                choices = ("fan_in", "fan_out")
            args.append(InitArg(p.name, kind, default, required, choices))
        ov = OVERRIDES.get(name, Override())
        doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        out[name] = InitScheme(
            name=name,
            doc=doc,
            args=tuple(args),
            takes_generator="generator" in sig.parameters,
            min_rank=ov.min_rank,
            max_rank=ov.max_rank,
            dtypes=tuple(str(d).removeprefix("torch.") for d in ov.dtypes) if ov.dtypes else None,
            integer_ok=ov.integer_ok,
            global_rng=ov.global_rng,
            note=ov.note,
            fn=fn,
        )
    out[DEFAULT_SCHEME] = InitScheme(
        name=DEFAULT_SCHEME,
        doc="PyTorch default: the owning module's own reset_parameters() (what its constructor did).",
        args=(),
        takes_generator=True,
        min_rank=0,
        max_rank=None,
        dtypes=None,
        integer_ok=True,
        global_rng=True,
        note="needs a module with reset_parameters(); seeded through a sub-seed",
    )
    return out


def schemes_payload() -> dict[str, Any]:
    """``GET /api/init/schemes``: the catalogue, the nonlinearities and their gains."""
    return {
        "schemes": [s.to_dict() for s in catalogue().values()],
        "nonlinearities": list(nonlinearities()),
        "gains": gains(),
        "tensor_choices": [c.value for c in TensorChoice],
        "torch_version": torch.__version__,
    }
