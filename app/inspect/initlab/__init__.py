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

The package, one job per file: ``schemes`` (the catalogue read from torch), ``plans`` (JSON ->
rules), ``resolution`` (rules -> tensors), ``running`` (inits on copies), ``distributions``
(theory and expected counts), ``previews`` (before/after, changes nothing), ``applying`` (apply,
history, reset), ``weights_init`` (the snippet).
"""

from __future__ import annotations

from torchscope.inspect.initlab.applying import ApplyResult, applied, apply, reset
from torchscope.inspect.initlab.distributions import density, expected_counts, theory
from torchscope.inspect.initlab.plans import MAX_RULES, MAX_SEED, Plan, Rule, parse_plan
from torchscope.inspect.initlab.previews import Preview, TensorPreview, preview
from torchscope.inspect.initlab.resolution import Assignment, resolve
from torchscope.inspect.initlab.schemes import (
    DEFAULT_SCHEME,
    OVERRIDES,
    InitArg,
    InitScheme,
    Override,
    TensorChoice,
    catalogue,
    gains,
    nonlinearities,
    schemes_payload,
)
from torchscope.inspect.initlab.weights_init import snippet

__all__ = [
    "DEFAULT_SCHEME",
    "MAX_RULES",
    "MAX_SEED",
    "OVERRIDES",
    "ApplyResult",
    "Assignment",
    "InitArg",
    "InitScheme",
    "Override",
    "Plan",
    "Preview",
    "Rule",
    "TensorChoice",
    "TensorPreview",
    "applied",
    "apply",
    "catalogue",
    "density",
    "expected_counts",
    "gains",
    "nonlinearities",
    "parse_plan",
    "preview",
    "reset",
    "resolve",
    "schemes_payload",
    "snippet",
    "theory",
]
