"""A plan written into the served model, the plans applied so far, and the exact reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from torchscope.inspect.initlab.plans import Plan
from torchscope.inspect.initlab.resolution import resolve
from torchscope.inspect.initlab.running import run
from torchscope.inspect.registry import LoadedModel


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
        new = run(assignments, plan.seed)
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
