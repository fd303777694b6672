"""What a plan would do: before/after histograms and the theory per tensor, computed on copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from torchscope.inspect.histograms import DEFAULT_BINS, Histogram, histograms
from torchscope.inspect.initlab.distributions import density, expected_counts, theory
from torchscope.inspect.initlab.plans import Plan
from torchscope.inspect.initlab.resolution import resolve
from torchscope.inspect.initlab.running import run


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


@dataclass(frozen=True)
class Preview:
    plan: Plan
    tensors: tuple[TensorPreview, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "tensors": [t.to_dict() for t in self.tensors]}


def preview(module: nn.Module, plan: Plan, bins: int = DEFAULT_BINS) -> Preview:
    """Before/after histograms of every tensor the plan touches; the module is not changed.

    The "after" values are computed on copies (``running.run``), exactly as ``apply`` computes them.
    """
    assignments = resolve(module, plan)
    new = run(assignments, plan.seed)
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
