"""Facts about one tensor, cached per type or dtype: dtype name, lazy or not, elements, bytes, shape."""

from __future__ import annotations

import torch
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


_DTYPE_NAMES: dict[torch.dtype, str] = {}
LAZY_TYPES: dict[type, bool] = {}


def is_uninitialized(t: torch.Tensor) -> bool:
    """Lazy modules hold placeholders until their first forward."""
    # Cached per type: isinstance on Parameter subclasses goes through a slow metaclass hook.
    cls = type(t)
    lazy = LAZY_TYPES.get(cls)
    if lazy is None:
        lazy = LAZY_TYPES[cls] = issubclass(cls, UninitializedTensorMixin)
    return lazy


def numel(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel()


def nbytes(t: torch.Tensor) -> int:
    return 0 if is_uninitialized(t) else t.numel() * t.element_size()


def shape_of(t: torch.Tensor) -> list[int] | None:
    return None if is_uninitialized(t) else list(t.shape)
