"""Load every SPEC of a run into a ModelRegistry (the built-in examples when there are none)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from torchscope.examples import EXAMPLES
from torchscope.inspect.errors import ModelSpecError
from torchscope.inspect.forward.sources import attach_cli_inputs
from torchscope.inspect.loader import build, describe, is_meta, parse_spec
from torchscope.inspect.registry import ModelRegistry
from torchscope.inspect.structure import numel


def load_models(
    specs: list[str],
    kwargs: list[dict[str, Any]] | None = None,
    *,
    meta: bool = False,
    progress: Callable[[str], None] | None = None,
    inputs: list[str] | None = None,
) -> ModelRegistry:
    """Build every SPEC in order; the first failure raises ModelSpecError naming its SPEC.

    ``inputs``: ``--inputs`` texts (once for all models or once per model), resolved per model.
    """
    kwargs = kwargs or []
    if kwargs and len(kwargs) not in (1, len(specs)):
        raise ModelSpecError(
            f"--kwargs was given {len(kwargs)} times for {len(specs)} SPECs: give it once (for all) or once per SPEC"
        )
    registry = ModelRegistry()
    named = [(None, s) for s in specs] if specs else [(name, spec) for name, spec in EXAMPLES]
    for i, (name, text) in enumerate(named):
        kw = {} if not kwargs else kwargs[0] if len(kwargs) == 1 else kwargs[i]
        spec = parse_spec(text, kw if specs else {})
        started = time.perf_counter()
        if progress:
            progress(f"loading {spec.text}{' on the meta device' if meta else ''} ...")
        module = build(spec, meta=meta)
        loaded = registry.add(name or spec.name, spec.text, module, meta=is_meta(module))
        loaded.doc = describe(spec)
        if progress:
            n = sum(numel(p) for p in module.parameters())
            progress(
                f"  {loaded.name}: {type(module).__name__}, {n:,} parameters "
                f"({time.perf_counter() - started:.2f} s) -> /models/{loaded.id}"
            )
    if inputs:
        attach_cli_inputs(registry, inputs)
    return registry

