"""The current ``state_dict`` as downloadable bytes: torch's ``.pt`` or ``.safetensors``.

Both load strictly into a fresh model of the same class:
``model.load_state_dict(torch.load(path, weights_only=True), strict=True)`` for ``.pt``;
``safetensors.torch.load_model(model, path, strict=True)`` for ``.safetensors``, which
stores tied weights once, as ``safetensors.torch.save_model`` does (see ``safetensors_dict``).
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


def safetensors_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """What ``safetensors.torch.save_model`` stores: one copy per shared storage, plus the aliases.

    safetensors refuses two names on one storage (tied weights: ``lm_head.weight``
    is ``tok_emb.weight``). Like ``save_model``, each group of names covering one
    whole storage keeps one name (the first in sorted order, its rule) and the others
    go into the metadata as ``{removed: kept}``; ``safetensors.torch.load_model(model,
    path, strict=True)`` re-ties them on load. A name that views only part of a
    storage keeps its own contiguous copy. Returns ``(tensors, aliases)``.
    """
    # Sharing is found on the tensors' own device (a per-tensor .to("cpu") would break it).
    groups: dict[tuple[str, int, int], list[str]] = {}
    for name, t in sd.items():
        storage = t.untyped_storage()
        if t.numel() and storage.data_ptr() and storage.nbytes():
            groups.setdefault((str(t.device), storage.data_ptr(), storage.nbytes()), []).append(name)
    aliases: dict[str, str] = {}
    partial: set[str] = set()
    for names in groups.values():
        if len(names) < 2:
            continue
        complete = sorted(n for n in names if _covers_storage(sd[n]))
        keep = complete[0] if complete else None
        for name in names:
            if keep is not None and name != keep and name in complete and sd[name].shape == sd[keep].shape:
                aliases[name] = keep
            elif name != keep:
                partial.add(name)  # a view of part of a shared storage: it gets its own bytes
    out: dict[str, torch.Tensor] = {}
    for name, t in sd.items():
        if name in aliases:
            continue
        t = t.detach().to("cpu")
        out[name] = t.clone(memory_format=torch.contiguous_format) if name in partial else t.contiguous()
    return out, aliases


def _covers_storage(t: torch.Tensor) -> bool:
    """The tensor spans its whole storage from byte 0 (safetensors' ``_is_complete``)."""
    storage = t.untyped_storage()
    return t.data_ptr() == storage.data_ptr() and t.numel() * t.element_size() == storage.nbytes()


def export_state_dict(module: nn.Module, fmt: ExportFormat, stem: str) -> Exported:
    """Serialise the module's current state_dict (a snapshot: taken under the caller's lock)."""
    sd = _checked_state_dict(module)
    if fmt is ExportFormat.pt:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in sd.items()}, buf)
        return Exported(buf.getvalue(), f"{stem}.pt", "application/octet-stream")
    tensors, aliases = safetensors_dict(sd)
    data = safetensors_save(tensors, metadata={"format": "pt", **aliases})
    return Exported(data, f"{stem}.safetensors", "application/octet-stream")
