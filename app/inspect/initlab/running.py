"""Resolved rules run on copies: one seeded generator, sub-seeds for anything that draws globally."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from torchscope.inspect.initlab.plans import MAX_SEED, bad
from torchscope.inspect.initlab.resolution import Assignment
from torchscope.inspect.initlab.schemes import DEFAULT_SCHEME, catalogue


def run(assignments: Sequence[Assignment], seed: int) -> dict[str, torch.Tensor]:
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
            raise bad(
                f"{a.rule.fn} on {a.row.name} failed: {exc}",
                rule=a.rule_index,
                tensor=a.row.name,
                reason=str(exc),
            ) from exc
        new[a.row.name] = value
    return new
