"""``capture_graph(module, args, kwargs)``: torch.export first, forward hooks where export fails.

Run it on fake inputs inside the forward pass's fake context (``service.py`` does): export
swaps in fakes of its own, the hooks capture runs ``forward`` as it is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from torch import nn

from torchscope.inspect.errors import InspectError
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


def capture_graph(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, mode: CaptureMode = CaptureMode.auto
) -> Capture:
    """The dataflow graph of ``module(*args, **kwargs)``; ``capture.reason`` says which method and why."""
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
        capture = capture_hooks(module, args, kwargs)
    except ForwardFailed as exc:
        where = f" in module {exc.path!r} ({exc.cls})" if exc.path else ""
        raise CaptureFailed(
            f"the forward pass failed{where}: {exc.message}", path=exc.path, capture="hooks"
        ) from None
    capture.reason = reason
    return capture

