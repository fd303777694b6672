"""A meta-device model made real, small ones only: what the init lab previews when the served weights do not exist."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from torchscope.inspect.errors import NoValues

# 50M elements: 200 MB of float32 and about a second to build, on top of the serving process.
MAX_MATERIALISE = 50_000_000


def distinct_numel(module: nn.Module) -> int:
    """Elements of every distinct parameter and buffer (tied weights once)."""
    seen: dict[int, int] = {}
    for t in [*module.parameters(), *module.buffers()]:
        seen[id(t)] = t.numel()
    return sum(seen.values())


def can_materialise(module: nn.Module) -> bool:
    return distinct_numel(module) <= MAX_MATERIALISE


def materialised_copy(module: nn.Module) -> nn.Module:
    """A CPU copy of a meta-device model with PyTorch's default initialisation; ``module`` is untouched.

    ``to_empty`` allocates the tensors, then every module's ``reset_parameters()`` runs, as
    when the model is built on the CPU. Tensors no ``reset_parameters`` fills (a custom
    ``nn.Parameter``, a buffer computed in ``__init__``) are NaN (integers: 0), so they show
    as having no values instead of as uninitialised memory.
    """
    n = distinct_numel(module)
    if n > MAX_MATERIALISE:
        raise NoValues(
            f"this model is on the meta device and too large to materialise a copy for the init lab "
            f"({n:,} elements, the limit is {MAX_MATERIALISE:,})"
        )
    real = copy.deepcopy(module).to_empty(device="cpu")
    with torch.no_grad():
        for t in [*real.parameters(), *real.buffers()]:
            if t.is_floating_point() or t.is_complex():
                t.fill_(math.nan)
            else:
                t.zero_()
        for m in real.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return real
