"""``capture_graph(module, args, kwargs)``: torch.export first, forward hooks where export fails.

``capture_model(module, inputs)`` runs it where it belongs: on the forward pass's fake
shadow of the model (``fake_forward``), whose parameters and buffers are fakes, so neither
capture reads or writes a weight of the served model, nor touches it while it runs.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Any

from torch import nn

from torchscope.inspect.errors import InspectError
from torchscope.inspect.forward.fake import fake_forward
from torchscope.inspect.forward.sources import ResolvedInputs
from torchscope.inspect.graph.export import ExportFailed, capture_export
from torchscope.inspect.graph.hooks import ForwardFailed, capture_hooks
from torchscope.inspect.graph.records import Capture


class CaptureMode(StrEnum):
    auto = "auto"  # export, else hooks
    export = "export"
    hooks = "hooks"


class CaptureFailed(InspectError):
    """The forward pass itself fails on these inputs: nothing to draw (a shape bug, wrong inputs)."""

    status = 422


EXPORT_REASON = (
    "torch.export.export(strict=False) traced the forward on fake tensors: every ATen op is shown, "
    "inside the module call it belongs to"
)
HOOKS_CHOSEN = "module-level graph asked for (capture=hooks): module calls and the ops that join tensors"


def capture_model(
    module: nn.Module,
    inputs: ResolvedInputs,
    mode: CaptureMode = CaptureMode.auto,
    *,
    lock: AbstractContextManager[Any] | None = None,
) -> Capture:
    """The graph of ``module`` on fake ``inputs`` (each inferred alternative in turn when one does not fit).

    ``lock`` (a served model's) is held while the fake shadow is built, not while the capture runs.
    """
    failure: CaptureFailed | None = None
    for candidate in [inputs] + [inputs.with_spec(spec, note) for spec, note in inputs.alternatives]:
        try:
            with fake_forward(module, lock=lock) as ctx:
                args, kwargs = ctx.inputs(candidate)
                capture = capture_graph(ctx.module, args, kwargs, mode=mode, fake_mode=ctx.mode)
        except CaptureFailed as exc:
            failure = failure or exc
            continue
        capture.inputs = candidate.to_json()
        capture.inputs_note = candidate.note
        if ctx.meta:
            capture.warnings.append("the model is on the meta device: its graph was captured on CPU fake tensors")
        return capture
    assert failure is not None
    raise failure


def capture_graph(
    module: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    mode: CaptureMode = CaptureMode.auto,
    fake_mode: AbstractContextManager[Any] | None = None,
) -> Capture:
    """The dataflow graph of ``module(*args, **kwargs)``; ``capture.reason`` says which method and why.

    ``fake_mode``: the FakeTensorMode the hooks capture runs under (export finds it from the inputs).
    """
    reason = HOOKS_CHOSEN
    if mode != CaptureMode.hooks:
        try:
            capture = capture_export(module, args, kwargs)
            capture.reason = EXPORT_REASON
            return capture
        except ExportFailed as exc:
            if mode == CaptureMode.export:
                raise CaptureFailed(f"torch.export could not trace this model: {exc}", capture="export") from None
            reason = (
                f"torch.export could not trace this model ({exc}); this is the module-level graph recorded "
                "with forward hooks instead: module calls and the ops that join tensors"
            )
    try:
        with fake_mode if fake_mode is not None else contextlib.nullcontext():
            capture = capture_hooks(module, args, kwargs)
    except ForwardFailed as exc:
        where = f" in module {exc.path!r} ({exc.cls})" if exc.path else ""
        raise CaptureFailed(
            f"the forward pass failed{where}: {exc.message}", path=exc.path, capture="hooks"
        ) from None
    capture.reason = reason
    return capture

