"""Optimizer param groups from a served model, by name globs or module classes.

A rule such as ``{"name": "head", "match": ["fc1.*"], "lr": 0.001}`` selects parameters
whose ``named_parameters()`` name matches an ``fnmatch`` glob, or whose owning module's
class (or a base class) matches, e.g. ``"LayerNorm"``. Rules are tried in order and the
first match wins; a parameter matched by a later rule too is reported, as is a rule that
matches nothing. Parameters no rule matches go to a final ``default`` group that uses the
optimizer's defaults, exactly as ``torch.optim.SGD([{...}, {...}], lr=...)`` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import torch
from torch import nn

from torchscope.inspect.errors import InvalidRequest

DEFAULT_GROUP = "default"
MAX_RULES = 32
MAX_PATTERNS = 64
# Keys of a rule that are not optimizer options.
RULE_KEYS = frozenset({"name", "match", "params"})


@dataclass(frozen=True)
class GroupRule:
    """One user-defined group: patterns plus the optimizer options it overrides."""

    name: str
    patterns: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupMembers:
    """Which parameters one group holds."""

    name: str
    patterns: tuple[str, ...]
    options: dict[str, Any]
    params: tuple[str, ...]
    numel: int
    is_default: bool = False

    @property
    def count(self) -> int:
        return len(self.params)


@dataclass(frozen=True)
class DoubleMatch:
    """A parameter two or more rules match: it stays in the first."""

    param: str
    groups: tuple[str, ...]

    @property
    def kept_in(self) -> str:
        return self.groups[0]


@dataclass(frozen=True)
class Membership:
    groups: tuple[GroupMembers, ...]
    double_matches: tuple[DoubleMatch, ...]
    empty_groups: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [
                {
                    "name": g.name,
                    "patterns": list(g.patterns),
                    "options": g.options,
                    "params": list(g.params),
                    "count": g.count,
                    "numel": g.numel,
                    "default": g.is_default,
                }
                for g in self.groups
            ],
            "double_matches": [
                {"param": d.param, "groups": list(d.groups), "kept_in": d.kept_in} for d in self.double_matches
            ],
            "empty_groups": list(self.empty_groups),
            "warnings": list(self.warnings),
        }


def parse_rules(raw: Any, *, field_name: str = "groups") -> list[GroupRule]:
    """Validate the JSON list of group rules; 422 naming the offending entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"{field_name} must be a list of groups", field=field_name)
    if len(raw) > MAX_RULES:
        raise InvalidRequest(f"{field_name} has {len(raw)} groups; the limit is {MAX_RULES}", field=field_name)
    rules: list[GroupRule] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{field_name}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object", field=where)
        patterns = item.get("match", item.get("params"))
        if patterns is None:
            raise InvalidRequest(
                f"{where} needs 'match': a list of name globs (e.g. 'fc1.*') or module classes (e.g. 'LayerNorm')",
                field=f"{where}.match",
            )
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p.strip() for p in patterns):
            raise InvalidRequest(f"{where}.match must be a list of non-empty strings", field=f"{where}.match")
        if len(patterns) > MAX_PATTERNS:
            raise InvalidRequest(f"{where}.match has too many patterns (limit {MAX_PATTERNS})", field=f"{where}.match")
        name = item.get("name") or f"group{i}"
        if not isinstance(name, str):
            raise InvalidRequest(f"{where}.name must be a string", field=f"{where}.name")
        if name in seen or name == DEFAULT_GROUP:
            raise InvalidRequest(f"{where}.name {name!r} is used twice (or is reserved)", field=f"{where}.name")
        seen.add(name)
        options = {k: v for k, v in item.items() if k not in RULE_KEYS}
        rules.append(GroupRule(name=name, patterns=tuple(p.strip() for p in patterns), options=options))
    return rules


def _owner_classes(model: nn.Module, param_name: str) -> list[str]:
    prefix = param_name.rpartition(".")[0]
    owner = model.get_submodule(prefix) if prefix else model
    return [cls.__name__ for cls in type(owner).__mro__ if cls not in (object, nn.Module)]


def _matches(pattern: str, name: str, classes: list[str]) -> bool:
    # "class:" / "name:" prefixes disambiguate; a bare pattern is tried as both.
    if pattern.startswith("class:"):
        pat = pattern[6:]
        return any(fnmatchcase(c, pat) for c in classes)
    if pattern.startswith("name:"):
        return fnmatchcase(name, pattern[5:])
    return fnmatchcase(name, pattern) or any(fnmatchcase(c, pattern) for c in classes)


def _numel(param: torch.Tensor) -> int:
    # An uninitialized lazy parameter has no shape yet: it counts 0 until the first forward.
    return 0 if isinstance(param, nn.parameter.UninitializedParameter) else param.numel()


def resolve(model: nn.Module, rules: list[GroupRule]) -> Membership:
    """Assign every parameter (``named_parameters()``, tied ones once) to the first rule that matches."""
    members: dict[str, list[tuple[str, int]]] = {r.name: [] for r in rules}
    default: list[tuple[str, int]] = []
    doubles: list[DoubleMatch] = []
    for name, param in model.named_parameters():
        classes = _owner_classes(model, name)
        hits = [r.name for r in rules if any(_matches(p, name, classes) for p in r.patterns)]
        if not hits:
            default.append((name, _numel(param)))
            continue
        members[hits[0]].append((name, _numel(param)))
        if len(hits) > 1:
            doubles.append(DoubleMatch(param=name, groups=tuple(hits)))
    groups = [
        GroupMembers(
            name=r.name,
            patterns=r.patterns,
            options=r.options,
            params=tuple(n for n, _ in members[r.name]),
            numel=sum(c for _, c in members[r.name]),
        )
        for r in rules
    ]
    warnings: list[str] = []
    empty = tuple(g.name for g in groups if not g.params)
    for g in groups:
        if not g.params:
            warnings.append(
                f"group {g.name!r} ({', '.join(g.patterns)}) matches no parameter; it stays in the "
                "optimizer as an empty group so the group indices match what you wrote"
            )
    for d in doubles:
        warnings.append(f"{d.param} matches groups {', '.join(d.groups)}; it goes to the first, {d.kept_in!r}")
    # The default group only exists when something falls through, as one would write it by hand.
    if default or not rules:
        groups.append(
            GroupMembers(
                name=DEFAULT_GROUP,
                patterns=(),
                options={},
                params=tuple(n for n, _ in default),
                numel=sum(c for _, c in default),
                is_default=True,
            )
        )
    return Membership(
        groups=tuple(groups), double_matches=tuple(doubles), empty_groups=empty, warnings=tuple(warnings)
    )


def torch_param_groups(model: nn.Module, membership: Membership) -> list[dict[str, Any]]:
    """The list to hand to a torch optimizer: ``[{"params": [...], **options}, ...]``."""
    params: dict[str, torch.Tensor] = dict(model.named_parameters())
    return [{"params": [params[n] for n in g.params], **g.options} for g in membership.groups]
