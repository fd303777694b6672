"""The current ``state_dict`` as downloadable bytes: torch's ``.pt`` or ``.safetensors``.

Both load with ``model.load_state_dict(sd, strict=True)`` into a fresh model of
the same class: ``torch.load(..., weights_only=True)`` for ``.pt``,
``safetensors.torch.load`` for ``.safetensors``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import torch
from safetensors.torch import save as safetensors_save
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]  # public, not in stubs

from torchscope.inspect.errors import NoValues


class ExportFormat(StrEnum):
    pt = "pt"
    safetensors = "safetensors"


@dataclass(frozen=True)
class Exported:
    data: bytes
    filename: str
    media_type: str


def _checked_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    sd = module.state_dict()
    for name, t in sd.items():
        if isinstance(t, UninitializedTensorMixin):
            raise NoValues(
                f"{name} is an uninitialized lazy tensor: run a forward pass before saving",
                tensor=name,
            )
        if t.is_meta:
            raise NoValues(
                f"{name} is on the meta device: there are no values to save", tensor=name
            )
    return sd


def safetensors_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict safetensors accepts: no two names sharing storage, every tensor contiguous on CPU.

    safetensors refuses shared storage (tied weights: ``lm_head.weight`` is
    ``tok_emb.weight``). ``safetensors.torch.save_model`` drops the duplicate
    names, and then ``load_state_dict(strict=True)`` fails on the missing key;
    cloning keeps every key, so strict loading works and re-ties nothing it
    should not (loading copies into the one shared Parameter twice, same values).
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, t in sd.items():
        t = t.detach().to("cpu")
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if t.numel() and (key in seen or not t.is_contiguous()
                          or t.storage_offset() or t.nbytes != storage.nbytes()):  # fmt: skip
            t = t.clone(memory_format=torch.contiguous_format)
        elif t.numel():
            seen.add(key)
        out[name] = t.contiguous()
    return out


def export_state_dict(module: nn.Module, fmt: ExportFormat, stem: str) -> Exported:
    """Serialise the module's current state_dict (a snapshot: taken under the caller's lock)."""
    sd = _checked_state_dict(module)
    if fmt is ExportFormat.pt:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in sd.items()}, buf)
        return Exported(buf.getvalue(), f"{stem}.pt", "application/octet-stream")
    data = safetensors_save(safetensors_dict(sd), metadata={"format": "pt"})
    return Exported(data, f"{stem}.safetensors", "application/octet-stream")
