"""The init lab: ``torch.nn.init`` as a catalogue, init plans, previews on copies, apply, snippet.

A plan is ordered rules plus a seed::

    {"rules": [{"match": "Linear", "tensor": "weight", "fn": "kaiming_normal_",
                "args": {"nonlinearity": "relu"}},
               {"match": "*.bias", "tensor": "all", "fn": "zeros_"}],
     "seed": 0}

``match`` is a module class name (``"Conv2d"``: the own parameters of every module
that is an instance of a class of that name, subclasses included) or
an fnmatch glob on full tensor names (``"*.bias"``, ``"blocks.*.weight"``:
parameters and buffers). Later rules win.

Order of random draws (what makes a plan reproducible, and what the snippet
does): one ``torch.Generator`` seeded with the plan's seed; modules in
``named_modules()`` pre-order; in each module, its own parameters then its own
buffers in registration order, each distinct tensor once at its first name
(tied weights are initialised once). A tensor whose rule is an ``nn.init``
function that takes ``generator=`` gets the shared generator; ``"default"``
(the module's own ``reset_parameters()``, i.e. PyTorch's default init) draws one
64-bit sub-seed from the generator per module and runs ``reset_parameters`` under
``torch.random.fork_rng`` seeded with it, so the global RNG is left alone.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import inspect
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.histograms import (
    DEFAULT_BINS,
    Histogram,
    NamedTensor,
    histograms,
    named_tensors,
)
from torchscope.inspect.registry import LoadedModel

DEFAULT_SCHEME = "default"
MAX_SEED = 2**63 - 1
MAX_RULES = 100

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


# ------------------------------------------------------------------ the catalogue


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


# ------------------------------------------------------------------------ plans


@dataclass(frozen=True)
class Rule:
    match: str
    tensor: TensorChoice
    fn: str
    args: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "tensor": self.tensor.value,
            "fn": self.fn,
            "args": dict(self.args),
        }


@dataclass(frozen=True)
class Plan:
    rules: tuple[Rule, ...]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "seed": self.seed}


def _bad(message: str, *, rule: int | None = None, **extra: Any) -> InvalidRequest:
    if rule is not None:
        return InvalidRequest(f"rule {rule}: {message}", rule=rule, **extra)
    return InvalidRequest(message, **extra)


def _coerce_arg(i: int, fn: str, arg: InitArg, value: Any) -> Any:
    if arg.type == "str":
        if not isinstance(value, str):
            raise _bad(f"{fn} argument {arg.name!r} must be a string", rule=i, field=arg.name)
        if arg.choices is not None and value not in arg.choices:
            raise _bad(
                f"{fn} argument {arg.name}={value!r} is not one of {', '.join(arg.choices)}",
                rule=i,
                field=arg.name,
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(
            f"{fn} argument {arg.name!r} must be a number, got {value!r}", rule=i, field=arg.name
        )
    if not math.isfinite(value):
        raise _bad(f"{fn} argument {arg.name!r} must be finite", rule=i, field=arg.name)
    if arg.type == "int":
        if float(value) != int(value):
            raise _bad(
                f"{fn} argument {arg.name!r} must be an integer, got {value!r}",
                rule=i,
                field=arg.name,
            )
        return int(value)
    return float(value)


def _check_arg_values(i: int, fn: str, args: dict[str, Any]) -> None:
    """Ranges a signature cannot say (torch would raise, or quietly produce garbage)."""
    std = args.get("std")
    if std is not None and std < 0:
        raise _bad(f"{fn}: std must be >= 0, got {std}", rule=i, field="std")
    if fn == "uniform_" and args.get("a", 0.0) > args.get("b", 1.0):
        raise _bad("uniform_: a must be <= b", rule=i, field="a")
    if fn == "trunc_normal_" and args.get("a", -2.0) >= args.get("b", 2.0):
        raise _bad("trunc_normal_: a must be < b", rule=i, field="a")
    if fn == "sparse_" and not 0 <= args.get("sparsity", 0.0) <= 1:
        raise _bad("sparse_: sparsity must be between 0 and 1", rule=i, field="sparsity")
    if fn == "dirac_" and args.get("groups", 1) < 1:
        raise _bad("dirac_: groups must be >= 1", rule=i, field="groups")


def parse_plan(data: Any) -> Plan:
    """Validate the JSON shape of a plan (no model needed): fn names, argument names and types."""
    if not isinstance(data, dict):
        raise _bad("the plan must be an object {rules: [...], seed: int}")
    unknown = set(data) - {"rules", "seed"}
    if unknown:
        raise _bad(f"unknown plan field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise _bad(f"seed must be an integer between 0 and {MAX_SEED}", field="seed")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise _bad("rules must be a non-empty list", field="rules")
    if len(raw_rules) > MAX_RULES:
        raise _bad(f"at most {MAX_RULES} rules", field="rules")
    cat = catalogue()
    rules = []
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            raise _bad("must be an object {match, tensor, fn, args}", rule=i)
        extra = set(raw) - {"match", "tensor", "fn", "args"}
        if extra:
            raise _bad(
                f"unknown field(s): {', '.join(sorted(extra))}", rule=i, field=sorted(extra)[0]
            )
        match = raw.get("match")
        if not isinstance(match, str) or not match.strip():
            raise _bad(
                "match must be a module class name or a glob on tensor names", rule=i, field="match"
            )
        try:
            choice = TensorChoice(raw.get("tensor", "all"))
        except ValueError:
            raise _bad(
                f"tensor must be one of weight, bias, all; got {raw.get('tensor')!r}",
                rule=i,
                field="tensor",
            ) from None
        fn = raw.get("fn")
        if isinstance(fn, str) and fn not in cat and fn + "_" in cat:
            fn = fn + "_"  # "xavier_uniform" means the in-place xavier_uniform_
        if not isinstance(fn, str) or fn not in cat:
            raise _bad(
                f"unknown init function {fn!r}: see GET /api/init/schemes", rule=i, field="fn"
            )
        args_in = raw.get("args") or {}
        if not isinstance(args_in, dict):
            raise _bad("args must be an object", rule=i, field="args")
        scheme = cat[fn]
        known = {a.name: a for a in scheme.args}
        for key in args_in:
            if key not in known:
                allowed = ", ".join(known) or "none"
                raise _bad(f"{fn} has no argument {key!r} (it takes: {allowed})", rule=i, field=key)
        args: dict[str, Any] = {}
        for a in scheme.args:
            if a.name in args_in:
                args[a.name] = _coerce_arg(i, fn, a, args_in[a.name])
            elif a.required:
                raise _bad(f"{fn} needs argument {a.name!r}", rule=i, field=a.name)
            else:
                args[a.name] = a.default
        _check_arg_values(i, fn, args)
        rules.append(Rule(match.strip(), choice, fn, args))
    return Plan(tuple(rules), seed)


# ------------------------------------------------------------------ resolution


@dataclass(frozen=True)
class Assignment:
    """One tensor and the rule that wins it."""

    order: int  # position in the draw order
    row: NamedTensor
    owner: nn.Module  # the module that owns the tensor under its first name
    local: str  # the tensor's attribute name in ``owner``
    rule_index: int
    rule: Rule


_GLOB_CHARS = set("*?[.")


def _selected(local: str, choice: TensorChoice) -> bool:
    return choice is TensorChoice.all or local == choice.value


def _rule_hits(rule: Rule, rows: Sequence[NamedTensor], owners: dict[str, nn.Module]) -> list[int]:
    """Indices of ``rows`` a rule selects (class names first, else a glob on every name)."""
    classes = {c.__name__ for m in owners.values() for c in type(m).__mro__}
    hits = []
    if not (_GLOB_CHARS & set(rule.match)) and rule.match in classes:
        for idx, row in enumerate(rows):
            if row.kind != "parameter":
                continue
            for name in (row.name, *row.aliases):
                mod_path, _, local = name.rpartition(".")
                # isinstance by name, as weights_init does: "Linear" also selects
                # MultiheadAttention's NonDynamicallyQuantizableLinear out_proj.
                mro = {c.__name__ for c in type(owners[mod_path]).__mro__}
                if rule.match in mro and _selected(local, rule.tensor):
                    hits.append(idx)
                    break
        return hits
    for idx, row in enumerate(rows):
        for name in (row.name, *row.aliases):
            if fnmatch.fnmatchcase(name, rule.match) and _selected(
                name.rpartition(".")[2], rule.tensor
            ):
                hits.append(idx)
                break
    return hits


def _fit(
    scheme: InitScheme, tensor: torch.Tensor, args: dict[str, Any], owner: nn.Module
) -> str | None:
    """Why ``scheme`` cannot initialise ``tensor`` (None when it can)."""
    if isinstance(tensor, UninitializedTensorMixin):
        return "uninitialized lazy tensor: run a forward pass first"
    if tensor.is_meta:
        return "meta tensor: it has no values to initialise"
    if scheme.name == DEFAULT_SCHEME:
        if not callable(getattr(owner, "reset_parameters", None)):
            return f"{type(owner).__name__} has no reset_parameters(), so it has no PyTorch default"
        return None
    if tensor.dtype.is_complex:
        return f"{tensor.dtype} is complex"
    if not tensor.dtype.is_floating_point and not scheme.integer_ok:
        dtype = str(tensor.dtype).removeprefix("torch.")
        return f"{scheme.name} draws real numbers; {dtype} tensor cannot hold them"
    ndim = tensor.dim()
    if ndim < scheme.min_rank or (scheme.max_rank is not None and ndim > scheme.max_rank):
        want = (
            f"exactly {scheme.min_rank}-D"
            if scheme.max_rank == scheme.min_rank
            else f"{scheme.min_rank}-D to {scheme.max_rank}-D"
            if scheme.max_rank is not None
            else f">= {scheme.min_rank}-D"
        )
        return f"{scheme.name} needs a {want} tensor, this one is {ndim}-D {tuple(tensor.shape)}"
    if scheme.dtypes is not None and str(tensor.dtype).removeprefix("torch.") not in scheme.dtypes:
        dtype = str(tensor.dtype).removeprefix("torch.")
        return f"{scheme.name} does not support {dtype} ({scheme.note})"
    if scheme.name == "dirac_" and tensor.shape[0] % int(args.get("groups", 1)):
        return f"dirac_: dim 0 ({tensor.shape[0]}) is not divisible by groups={args.get('groups')}"
    if scheme.name.startswith(("xavier", "kaiming")) and tensor.numel() == 0:
        return "empty tensor: fan is zero"
    return None


def resolve(module: nn.Module, plan: Plan) -> list[Assignment]:
    """Winning rule per tensor, in draw order; raises InvalidRequest naming rule, tensor, reason."""
    rows = named_tensors(module)
    owners = dict(module.named_modules(remove_duplicate=False))
    winner: dict[int, int] = {}
    for i, rule in enumerate(plan.rules):
        hits = _rule_hits(rule, rows, owners)
        if not hits:
            raise _bad(
                f"match {rule.match!r} (tensor={rule.tensor.value}) selects no tensor of this model",
                rule=i,
                match=rule.match,
                reason="matches nothing",
            )
        for idx in hits:
            winner[idx] = i
    cat = catalogue()
    out = []
    for order, idx in enumerate(sorted(winner)):
        row = rows[idx]
        i = winner[idx]
        rule = plan.rules[i]
        mod_path, _, local = row.name.rpartition(".")
        owner = owners[mod_path]
        reason = _fit(cat[rule.fn], row.tensor, rule.args, owner)
        if reason is not None:
            raise _bad(f"{rule.fn} on {row.name}: {reason}", rule=i, tensor=row.name, reason=reason)
        out.append(Assignment(order, row, owner, local, i, rule))
    return out


# -------------------------------------------------------------------- execution


def _run(assignments: Sequence[Assignment], seed: int) -> dict[str, torch.Tensor]:
    """New values for every assigned tensor, computed on copies; the model is not touched."""
    cat = catalogue()
    gen = torch.Generator().manual_seed(seed)
    new: dict[str, torch.Tensor] = {}
    reset_done: dict[int, nn.Module] = {}
    for a in assignments:
        try:
            if a.rule.fn == DEFAULT_SCHEME:
                copy_mod = reset_done.get(id(a.owner))
                if copy_mod is None:
                    sub = int(torch.randint(0, MAX_SEED, (1,), generator=gen))
                    copy_mod = copy.deepcopy(a.owner).to("cpu")
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(sub)
                        copy_mod.reset_parameters()  # type: ignore[operator]
                    reset_done[id(a.owner)] = copy_mod
                value = getattr(copy_mod, a.local).detach().clone()
            else:
                scheme = cat[a.rule.fn]
                assert scheme.fn is not None
                value = a.row.tensor.detach().to("cpu", copy=True)
                kwargs = dict(a.rule.args)
                if scheme.takes_generator:
                    kwargs["generator"] = gen
                if scheme.global_rng:
                    sub = int(torch.randint(0, MAX_SEED, (1,), generator=gen))
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(sub)
                        scheme.fn(value, **kwargs)
                else:
                    scheme.fn(value, **kwargs)
        except Exception as exc:  # validation missed something torch refuses: still a 422
            raise _bad(
                f"{a.rule.fn} on {a.row.name} failed: {exc}",
                rule=a.rule_index,
                tensor=a.row.name,
                reason=str(exc),
            ) from exc
        new[a.row.name] = value
    return new


def _fan(tensor: torch.Tensor) -> tuple[int, int]:
    # Same arithmetic as torch.nn.init._calculate_fan_in_and_fan_out (tested against it).
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def theory(fn: str, args: dict[str, Any], tensor: torch.Tensor) -> dict[str, Any] | None:
    """The distribution ``fn`` draws each element from, when there is a simple one."""
    if fn == "uniform_":
        return {"kind": "uniform", "low": args["a"], "high": args["b"]}
    if fn == "normal_":
        return {"kind": "normal", "mean": args["mean"], "std": args["std"]}
    if fn == "trunc_normal_":
        return {
            "kind": "trunc_normal",
            "mean": args["mean"],
            "std": args["std"],
            "low": args["a"],
            "high": args["b"],
        }
    if fn in ("constant_", "ones_", "zeros_"):
        value = {"ones_": 1.0, "zeros_": 0.0}.get(fn, args.get("val"))
        return {"kind": "constant", "value": value}
    if fn.startswith(("xavier_", "kaiming_")):
        fan_in, fan_out = _fan(tensor)
        if fn.startswith("xavier_"):
            std = args["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
        else:
            gain = nn.init.calculate_gain(args["nonlinearity"], args["a"])
            fan = fan_in if args["mode"] == "fan_in" else fan_out
            std = float(gain) / math.sqrt(fan)
        if fn.endswith("uniform_"):
            bound = math.sqrt(3.0) * std
            return {"kind": "uniform", "low": -bound, "high": bound, "std": std}
        return {"kind": "normal", "mean": 0.0, "std": std}
    return None


def _cdf(t: dict[str, Any], x: float) -> float:
    """P(X < x): bins are [e_i, e_i+1), so a point mass on an edge belongs to the bin above it."""
    kind = t["kind"]
    if kind == "uniform":
        lo, hi = t["low"], t["high"]
        if hi <= lo:
            return 0.0 if x <= lo else 1.0
        return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))
    if kind in ("normal", "trunc_normal"):
        mean, std = t["mean"], t["std"]

        def phi(v: float) -> float:
            if std == 0:
                return 0.0 if v <= mean else 1.0
            return 0.5 * (1.0 + math.erf((v - mean) / (std * math.sqrt(2.0))))

        if kind == "normal":
            return float(phi(x))
        lo, hi = phi(t["low"]), phi(t["high"])
        if hi <= lo:
            return 0.0 if x <= t["low"] else 1.0
        return min(1.0, max(0.0, (phi(x) - lo) / (hi - lo)))
    return 0.0 if x <= t["value"] else 1.0  # constant


def expected_counts(t: dict[str, Any], edges: Sequence[float], n: int) -> list[float]:
    """Expected count per bin under ``t`` (the overlay): n * (CDF(e_i+1) - CDF(e_i))."""
    cdf = [_cdf(t, e) for e in edges]
    if t["kind"] == "constant" and edges and t["value"] == edges[-1]:
        cdf[-1] = 1.0  # numpy's last bin is closed: a point mass on the last edge lands in it
    return [n * (cdf[i + 1] - cdf[i]) for i in range(len(edges) - 1)]


@dataclass(frozen=True)
class TensorPreview:
    name: str
    aliases: tuple[str, ...]
    rule: int
    fn: str
    args: dict[str, Any]
    before: Histogram
    after: Histogram
    theory: dict[str, Any] | None
    expected: list[float] | None

    def to_dict(self) -> dict[str, Any]:
        after_n = sum(self.after.counts)
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "rule": self.rule,
            "fn": self.fn,
            "args": dict(self.args),
            "shape": list(self.after.shape),
            "dtype": self.after.dtype,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            # "now" and "after" are binned over their own ranges, so their bins differ in width:
            # counts on one axis would mislead (a wide "now" looks too low); densities compare.
            "density": {
                "before": density(self.before.counts, self.before.edges),
                "after": density(self.after.counts, self.after.edges),
                "expected": None if self.expected is None else density(self.expected, self.after.edges, after_n),
            },
            "theory": self.theory,
            "expected": self.expected,
        }


def density(counts: Sequence[float], edges: Sequence[float], total: float | None = None) -> list[float]:
    """Counts per unit of value, normalised to integrate to 1 (``np.histogram(density=True)``)."""
    n = sum(counts) if total is None else total
    return [c / (n * (hi - lo)) if n and hi > lo else 0.0 for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class Preview:
    plan: Plan
    tensors: tuple[TensorPreview, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "tensors": [t.to_dict() for t in self.tensors]}


def preview(module: nn.Module, plan: Plan, bins: int = DEFAULT_BINS) -> Preview:
    """Before/after histograms of every tensor the plan touches; the module is not changed.

    The "after" values are computed on copies (``_run``), exactly as ``apply`` computes them.
    """
    assignments = resolve(module, plan)
    new = _run(assignments, plan.seed)
    # Batched, without quantiles: a plan over a whole model touches every tensor twice.
    befores = histograms([(a.row.name, a.row.tensor) for a in assignments], bins)
    afters = histograms(
        [(a.row.name, new[a.row.name].to(a.row.tensor.dtype)) for a in assignments], bins
    )
    out = []
    for a, before, after in zip(assignments, befores, afters, strict=True):
        t = theory(a.rule.fn, a.rule.args, a.row.tensor)
        expected = expected_counts(t, after.edges, sum(after.counts)) if t is not None else None
        out.append(TensorPreview(a.row.name, a.row.aliases, a.rule_index, a.rule.fn, dict(a.rule.args),
                                 before, after, t, expected))  # fmt: skip
    return Preview(plan, tuple(out))


@dataclass(frozen=True)
class ApplyResult:
    changed: tuple[str, ...]
    modified: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": list(self.changed),
            "count": len(self.changed),
            "modified": self.modified,
        }


def apply(loaded: LoadedModel, plan: Plan) -> ApplyResult:
    """Run the plan and write the results into the served model (original kept for reset).

    Everything is computed first; the served tensors are written only once every
    rule has succeeded, so a refused or failing plan leaves the model untouched.
    """
    with loaded.lock:
        assignments = resolve(loaded.module, plan)
        new = _run(assignments, plan.seed)
        loaded.ensure_original(a.row.tensor for a in assignments)  # only what changes
        with torch.no_grad():
            for a in assignments:
                a.row.tensor.copy_(new[a.row.name])
        if assignments:
            loaded.applied.append(plan.to_dict())
        loaded.touched()  # open pages of this model are out of date now
        return ApplyResult(tuple(a.row.name for a in assignments), loaded.modified)


def applied(loaded: LoadedModel) -> dict[str, Any]:
    """The plans applied since the original weights (oldest first): what "modified" consists of."""
    with loaded.lock:
        return {"modified": loaded.modified, "plans": [dict(p) for p in loaded.applied]}


def reset(loaded: LoadedModel) -> dict[str, Any]:
    """Restore the weights kept before the first change, bit for bit."""
    with loaded.lock:
        restored = loaded.reset()
    return {"restored": restored, "modified": loaded.modified}


# ---------------------------------------------------------------------- snippet


def snippet(plan: Plan) -> str:
    """A runnable ``weights_init(model, seed)`` that reproduces ``plan`` exactly (same numbers).

    It carries its own copy of the matching rules and the draw order of ``_run``;
    a unit test executes it and compares every tensor with ``apply``.
    """
    rules = ",\n".join(
        f"    ({r.match!r}, {r.tensor.value!r}, {r.fn!r}, {r.args!r})" for r in plan.rules
    )
    return f'''import fnmatch

import torch
from torch import nn

# (match, tensor, fn, args): match is a module class name (isinstance, by name) or a
# glob on tensor names.
# Later rules win. Generated by torchscope from an init-lab plan.
RULES = [
{rules},
]
GLOBAL_RNG = {sorted(n for n, sc in catalogue().items() if sc.global_rng and n != DEFAULT_SCHEME)!r}


def _rule_for(model_classes, names, owners, kind):
    """Index of the last rule that selects a tensor known by `names` (None: untouched)."""
    found = None
    for i, (match, which, _fn, _args) in enumerate(RULES):
        is_class = not (set("*?[.") & set(match)) and match in model_classes
        for name, owner in zip(names, owners):
            local = name.rpartition(".")[2]
            if which != "all" and local != which:
                continue
            if is_class:
                if kind == "parameter" and match in {{c.__name__ for c in type(owner).__mro__}}:
                    found = i
                    break
            elif fnmatch.fnmatchcase(name, match):
                found = i
                break
    return found


@torch.no_grad()
def weights_init(model: nn.Module, seed: int = {plan.seed}) -> None:
    """Re-initialise `model` in place, drawing from one torch.Generator seeded with `seed`.

    Order of draws (it decides the numbers): model.modules() order (parents before
    children, each module once); in each module its own parameters, then its own
    buffers; a tensor held by several modules (tied weights) is drawn once, at the
    first module that holds it.
    """
    generator = torch.Generator().manual_seed(seed)
    paths = {{}}  # id(module) -> every path it is reachable at: a glob may match any of them
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(path)
    model_classes = {{c.__name__ for m in model.modules() for c in type(m).__mro__}}
    tensors = {{}}  # id(tensor) -> (names, owners, kind, tensor, first owner, local name)
    for module in model.modules():
        for kind, items in (("parameter", module._parameters), ("buffer", module._buffers)):
            for local, tensor in items.items():
                if tensor is None:
                    continue
                entry = tensors.setdefault(id(tensor), ([], [], kind, tensor, module, local))
                for path in paths[id(module)]:
                    entry[0].append((path + "." if path else "") + local)
                    entry[1].append(module)
    reset_copies = {{}}
    for tensor_names, owners, kind, tensor, owner, local in tensors.values():
        i = _rule_for(model_classes, tensor_names, owners, kind)
        if i is None:
            continue
        _match, _which, fn, args = RULES[i]
        if fn == "default":  # PyTorch's default: the module's own reset_parameters()
            if id(owner) not in reset_copies:
                sub_seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
                fresh = copy.deepcopy(owner).to("cpu")
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(sub_seed)
                    fresh.reset_parameters()
                reset_copies[id(owner)] = fresh
            tensor.copy_(getattr(reset_copies[id(owner)], local))
            continue
        init_fn = getattr(nn.init, fn)
        value = tensor.detach().to("cpu", copy=True)
        if fn in GLOBAL_RNG:  # also uses torch's global RNG: fork it, seed it from `generator`
            sub_seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sub_seed)
                init_fn(value, **args, generator=generator)
        elif "generator" in init_fn.__code__.co_varnames:
            init_fn(value, **args, generator=generator)
        else:
            init_fn(value, **args)
        tensor.copy_(value)


# weights_init(model)  # e.g. right after model = MyNet()
'''.replace("import fnmatch\n", "import copy\nimport fnmatch\n", 1)
