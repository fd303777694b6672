"""A plan against a model: the rule that wins each tensor, in draw order, and whether its function fits."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.histograms import NamedTensor, named_tensors
from torchscope.inspect.initlab.plans import Plan, Rule, bad
from torchscope.inspect.initlab.schemes import DEFAULT_SCHEME, InitScheme, TensorChoice, catalogue


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
            raise bad(
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
            raise bad(f"{rule.fn} on {row.name}: {reason}", rule=i, tensor=row.name, reason=reason)
        out.append(Assignment(order, row, owner, local, i, rule))
    return out
