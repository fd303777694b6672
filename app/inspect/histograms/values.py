"""What can be binned (a bin count in range, a tensor with real values), read as flat float32."""

from __future__ import annotations

import torch
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.errors import InvalidRequest, NoValues
from torchscope.inspect.histograms.records import MAX_BINS, MIN_BINS


def check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int):
        raise InvalidRequest(f"bins must be an integer, got {bins!r}", field="bins")
    if not MIN_BINS <= bins <= MAX_BINS:
        raise InvalidRequest(
            f"bins must be between {MIN_BINS} and {MAX_BINS}, got {bins}", field="bins"
        )
    return bins


def has_values(tensor: torch.Tensor) -> bool:
    """False for meta tensors and uninitialized lazy parameters/buffers."""
    return not (isinstance(tensor, UninitializedTensorMixin) or tensor.is_meta)


def check_values(name: str, tensor: torch.Tensor) -> None:
    if isinstance(tensor, UninitializedTensorMixin):
        raise NoValues(
            f"{name} is an uninitialized lazy tensor: it has no values until the "
            "module's first forward pass",
            tensor=name,
        )
    if tensor.is_meta:
        raise NoValues(
            f"{name} is on the meta device: it has a shape and dtype but no values",
            tensor=name,
        )
    if tensor.is_complex():
        raise InvalidRequest(
            f"{name} is complex ({tensor.dtype}); histograms need real values", tensor=name
        )


def flat_values(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as flat, contiguous float32 on the CPU (a view when it already is)."""
    check_values(name, tensor)
    t = tensor.detach()
    x = t.float() if t.dtype != torch.float32 else t
    x = x.reshape(-1)
    if x.device.type != "cpu":
        x = x.cpu()
    return x.contiguous()
