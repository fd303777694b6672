"""Init plans from JSON: ordered rules and a seed, every field and argument checked (no model needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.initlab.schemes import InitArg, TensorChoice, catalogue

MAX_SEED = 2**63 - 1
MAX_RULES = 100


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


def bad(message: str, *, rule: int | None = None, **extra: Any) -> InvalidRequest:
    if rule is not None:
        return InvalidRequest(f"rule {rule}: {message}", rule=rule, **extra)
    return InvalidRequest(message, **extra)


def _coerce_arg(i: int, fn: str, arg: InitArg, value: Any) -> Any:
    if arg.type == "str":
        if not isinstance(value, str):
            raise bad(f"{fn} argument {arg.name!r} must be a string", rule=i, field=arg.name)
        if arg.choices is not None and value not in arg.choices:
            raise bad(
                f"{fn} argument {arg.name}={value!r} is not one of {', '.join(arg.choices)}",
                rule=i,
                field=arg.name,
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(
            f"{fn} argument {arg.name!r} must be a number, got {value!r}", rule=i, field=arg.name
        )
    if not math.isfinite(value):
        raise bad(f"{fn} argument {arg.name!r} must be finite", rule=i, field=arg.name)
    if arg.type == "int":
        if float(value) != int(value):
            raise bad(
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
        raise bad(f"{fn}: std must be >= 0, got {std}", rule=i, field="std")
    if fn == "uniform_" and args.get("a", 0.0) > args.get("b", 1.0):
        raise bad("uniform_: a must be <= b", rule=i, field="a")
    if fn == "trunc_normal_" and args.get("a", -2.0) >= args.get("b", 2.0):
        raise bad("trunc_normal_: a must be < b", rule=i, field="a")
    if fn == "sparse_" and not 0 <= args.get("sparsity", 0.0) <= 1:
        raise bad("sparse_: sparsity must be between 0 and 1", rule=i, field="sparsity")
    if fn == "dirac_" and args.get("groups", 1) < 1:
        raise bad("dirac_: groups must be >= 1", rule=i, field="groups")


def parse_plan(data: Any) -> Plan:
    """Validate the JSON shape of a plan (no model needed): fn names, argument names and types."""
    if not isinstance(data, dict):
        raise bad("the plan must be an object {rules: [...], seed: int}")
    unknown = set(data) - {"rules", "seed"}
    if unknown:
        raise bad(f"unknown plan field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise bad(f"seed must be an integer between 0 and {MAX_SEED}", field="seed")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise bad("rules must be a non-empty list", field="rules")
    if len(raw_rules) > MAX_RULES:
        raise bad(f"at most {MAX_RULES} rules", field="rules")
    cat = catalogue()
    rules = []
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            raise bad("must be an object {match, tensor, fn, args}", rule=i)
        extra = set(raw) - {"match", "tensor", "fn", "args"}
        if extra:
            raise bad(
                f"unknown field(s): {', '.join(sorted(extra))}", rule=i, field=sorted(extra)[0]
            )
        match = raw.get("match")
        if not isinstance(match, str) or not match.strip():
            raise bad(
                "match must be a module class name or a glob on tensor names", rule=i, field="match"
            )
        try:
            choice = TensorChoice(raw.get("tensor", "all"))
        except ValueError:
            raise bad(
                f"tensor must be one of weight, bias, all; got {raw.get('tensor')!r}",
                rule=i,
                field="tensor",
            ) from None
        fn = raw.get("fn")
        if isinstance(fn, str) and fn not in cat and fn + "_" in cat:
            fn = fn + "_"  # "xavier_uniform" means the in-place xavier_uniform_
        if not isinstance(fn, str) or fn not in cat:
            raise bad(
                f"unknown init function {fn!r}: see GET /api/init/schemes", rule=i, field="fn"
            )
        args_in = raw.get("args") or {}
        if not isinstance(args_in, dict):
            raise bad("args must be an object", rule=i, field="args")
        scheme = cat[fn]
        known = {a.name: a for a in scheme.args}
        for key in args_in:
            if key not in known:
                allowed = ", ".join(known) or "none"
                raise bad(f"{fn} has no argument {key!r} (it takes: {allowed})", rule=i, field=key)
        args: dict[str, Any] = {}
        for a in scheme.args:
            if a.name in args_in:
                args[a.name] = _coerce_arg(i, fn, a, args_in[a.name])
            elif a.required:
                raise bad(f"{fn} needs argument {a.name!r}", rule=i, field=a.name)
            else:
                args[a.name] = a.default
        _check_arg_values(i, fn, args)
        rules.append(Rule(match.strip(), choice, fn, args))
    return Plan(tuple(rules), seed)
