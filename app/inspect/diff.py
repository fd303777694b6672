"""Tensor diffs: two checkpoints, or a checkpoint and a model's current weights (split from compare)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from torchscope.inspect.checkpoints import Checkpoint, dtype_name
from torchscope.inspect.compare import remap
from torchscope.inspect.errors import InvalidRequest, NotFound, NoValues
from torchscope.inspect.registry import LoadedModel

# ---------------------------------------------------------------------------
# Diff: two checkpoints, or a checkpoint and a model's current weights


@dataclass(frozen=True)
class TensorSource:
    """Tensors by key with their metadata, and a way to read one at a time."""

    label: str
    metas: dict[str, tuple[tuple[int, ...], str]]
    get: Callable[[str], torch.Tensor]


def checkpoint_source(ckpt: Checkpoint, strip_prefix: str = "", add_prefix: str = "") -> TensorSource:
    """The checkpoint's state_dict (keys remapped like a load would), else every tensor by key path."""
    tensors = ckpt.state_dict_keys()
    get = ckpt.state_dict_tensor
    if not tensors:
        tensors, get = ckpt.tensors, ckpt.tensor
    names = remap(list(tensors), strip_prefix, add_prefix)
    metas = {new: (tensors[old].shape, tensors[old].dtype) for new, old in names.items()}
    return TensorSource(ckpt.name, metas, lambda k: get(names[k]))


def model_source(loaded: LoadedModel) -> TensorSource:
    if loaded.meta:
        raise NoValues(f"model {loaded.id!r} is on the meta device: it has no values to compare", model=loaded.id)
    sd = loaded.module.state_dict(keep_vars=False)
    metas = {k: (tuple(t.shape), dtype_name(t.dtype)) for k, t in sd.items() if isinstance(t, torch.Tensor)}
    return TensorSource(f"{loaded.name} (current weights)", metas, lambda k: sd[k])


_CHUNK = 1 << 22


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@torch.no_grad()
def change_stats(a: torch.Tensor, b: torch.Tensor) -> dict[str, float | None]:
    """max|a-b|, ||b-a||/||a|| and cosine(a, b) in float64, in chunks so big tensors need little memory."""
    x_all, y_all = a.detach().reshape(-1), b.detach().reshape(-1)
    if x_all.is_complex() or y_all.is_complex():
        x_all, y_all = torch.view_as_real(x_all.resolve_conj()).reshape(-1), torch.view_as_real(y_all.resolve_conj()).reshape(-1)
    n = x_all.numel()
    if n == 0:
        return {"max_abs": None, "rel_l2": None, "cosine": None}
    max_abs = dot = na = nb = nd = 0.0
    for i in range(0, n, _CHUNK):
        x = x_all[i : i + _CHUNK].to(torch.float64)
        y = y_all[i : i + _CHUNK].to(torch.float64)
        d = y - x
        m = float(d.abs().max())
        if not math.isfinite(m):  # NaN/inf on either side: no meaningful change figure (max() would hide NaN)
            return {"max_abs": None, "rel_l2": None, "cosine": None}
        max_abs = max(max_abs, m)
        dot += float(torch.dot(x, y))
        na += float(torch.dot(x, x))
        nb += float(torch.dot(y, y))
        nd += float(torch.dot(d, d))
    rel = math.sqrt(nd) / math.sqrt(na) if na > 0 else (0.0 if nd == 0 else math.inf)
    cos = dot / math.sqrt(na * nb) if na > 0 and nb > 0 else None
    return {"max_abs": _finite(max_abs), "rel_l2": _finite(rel), "cosine": _finite(cos) if cos is not None else None}


def diff_sources(a: TensorSource, b: TensorSource) -> dict[str, Any]:
    """Added, removed, reshaped, retyped tensors, and change statistics for the common ones (largest first)."""
    added = [k for k in b.metas if k not in a.metas]
    removed = [k for k in a.metas if k not in b.metas]
    reshaped: list[dict[str, Any]] = []
    retyped: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for key, (shape_a, dtype_a) in a.metas.items():
        if key not in b.metas:
            continue
        shape_b, dtype_b = b.metas[key]
        if shape_a != shape_b:
            reshaped.append({"key": key, "a": list(shape_a), "b": list(shape_b)})
            continue
        if dtype_a != dtype_b:
            retyped.append({"key": key, "a": dtype_a, "b": dtype_b})
        stats = change_stats(a.get(key), b.get(key))
        rows.append({"key": key, "shape": list(shape_a), "dtype_a": dtype_a, "dtype_b": dtype_b, **stats})
    rows.sort(key=lambda r: (r["rel_l2"] is None, -(r["rel_l2"] or 0.0), -(r["max_abs"] or 0.0)))
    return {
        "a": a.label,
        "b": b.label,
        "added": added,
        "removed": removed,
        "reshaped": reshaped,
        "retyped": retyped,
        "common": rows,
        "unchanged": sum(1 for r in rows if r["max_abs"] == 0.0),
    }


def diff_checkpoints(a: Checkpoint, b: Checkpoint, *, strip_prefix: str = "", add_prefix: str = "") -> dict[str, Any]:
    """Checkpoint a (keys remapped by the prefixes) against checkpoint b."""
    return diff_sources(checkpoint_source(a, strip_prefix, add_prefix), checkpoint_source(b))


def diff_checkpoint_model(
    ckpt: Checkpoint, loaded: LoadedModel, *, strip_prefix: str = "", add_prefix: str = ""
) -> dict[str, Any]:
    """Checkpoint (a) against the model's current weights (b), under the model's lock."""
    with loaded.lock:
        return diff_sources(checkpoint_source(ckpt, strip_prefix, add_prefix), model_source(loaded))


def pair_source(
    ckpt: Checkpoint,
    other: Checkpoint | None,
    loaded: LoadedModel | None,
    *,
    strip_prefix: str = "",
    add_prefix: str = "",
) -> tuple[TensorSource, TensorSource]:
    """The two sides of a diff: this checkpoint (keys remapped) and another checkpoint or a model."""
    a = checkpoint_source(ckpt, strip_prefix, add_prefix)
    if other is not None:
        return a, checkpoint_source(other)
    if loaded is None:
        raise InvalidRequest("give another checkpoint or a model to compare with", rule="diff")
    with loaded.lock:  # state_dict() walks the model: a read like any other
        return a, model_source(loaded)


def pair_tensors(a: TensorSource, b: TensorSource, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One key's tensor on both sides (for histogram overlays); a key missing on either side is a 404."""
    for side in (a, b):
        if key not in side.metas:
            raise NotFound(f"{side.label} has no tensor {key!r}", tensor=key)
    return a.get(key), b.get(key)
