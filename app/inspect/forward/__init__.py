"""What flows through a model: output shapes, FLOPs and memory per module call, on fake tensors (issue 10).

The public pieces, each usable from a Python prompt with a model and no server:

- ``resolve_inputs(module, given=None, cli=None) -> ResolvedInputs`` (``sources``): the
  example inputs for one forward (given JSON, else ``--inputs``, else inferred, else
  ``NoInputs``, a 409); ``model_inputs(loaded, given=None)`` does it for a served model.
  A ``ResolvedInputs`` has ``.spec`` (``InputSpec``), ``.to_json()`` (the resolved JSON
  spec), ``.source`` (``given`` / ``cli`` / ``inferred``) and the real ``.values`` when the
  source had them.
- ``fake_forward(module, device=None)`` (``fake``): a context in which the model's tensors
  are fake copies (``ctx.mode`` is the ``FakeTensorMode``; ``ctx.inputs(resolved)`` gives
  fake ``(args, kwargs)``); the model is bit-identical afterwards. Issue 11 (a dataflow
  graph captured with ``torch.export``) runs inside it.
- ``run_forward(module, resolved) -> ForwardResult`` (``run``): one row per module call,
  FLOPs (``FlopCounterMode``), totals; ``ForwardFailed`` (422) names where it failed.
- ``format_table(answer, TableFormat.text | markdown, depth=...)`` (``formatting``).
"""

from __future__ import annotations

from torchscope.inspect.forward.fake import FakeModel, fake_forward
from torchscope.inspect.forward.formatting import TableFormat, format_table
from torchscope.inspect.forward.run import ForwardFailed, ForwardResult, run_forward
from torchscope.inspect.forward.sources import (
    InputsOption,
    NoInputs,
    ResolvedInputs,
    Source,
    attach_cli_inputs,
    cli_inputs,
    model_inputs,
    parse_inputs_option,
    python_inputs,
    resolve_inputs,
)
from torchscope.inspect.forward.spec import InputSpec, TensorSpec, parse_inputs
from torchscope.inspect.forward.totals import EXPLAIN, per_module

__all__ = [
    "EXPLAIN",
    "FakeModel",
    "ForwardFailed",
    "ForwardResult",
    "InputSpec",
    "InputsOption",
    "NoInputs",
    "ResolvedInputs",
    "Source",
    "TableFormat",
    "TensorSpec",
    "attach_cli_inputs",
    "cli_inputs",
    "fake_forward",
    "format_table",
    "model_inputs",
    "parse_inputs",
    "parse_inputs_option",
    "per_module",
    "python_inputs",
    "resolve_inputs",
    "run_forward",
]
