"""Checkpoints against models and against each other, computed from metadata where possible.

``load_report`` says what ``model.load_state_dict(sd, strict=True)`` would say,
without reading a tensor: it walks the modules the way ``nn.Module.load_state_dict``
does (per-module local state, persistent buffers only, the 0-dim/1-element
backward-compatibility rule, BatchNorm's ``num_batches_tracked`` version rule,
``_extra_state``). Tests check it against torch's own RuntimeError text.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.instancenorm import _InstanceNorm

from torchscope.inspect.checkpoints import Checkpoint, OptimizerInfo, dtype_name
from torchscope.inspect.errors import InspectError, InvalidRequest, NotFound, NoValues
from torchscope.inspect.registry import LoadedModel

_EXTRA = "_extra_state"
# Classes whose _load_from_state_dict we mirror; any other override may behave differently.
_MIRRORED = {nn.Module._load_from_state_dict, _NormBase._load_from_state_dict, _InstanceNorm._load_from_state_dict}


class LoadRefused(InspectError):
    """A strict load that load_state_dict would reject: nothing was changed."""

    status = 409


@dataclass(frozen=True)
class Entry:
    """A checkpoint value as load_state_dict sees it: a tensor's shape and dtype, or a non-tensor's type."""

    shape: tuple[int, ...] | None
    dtype: str | None
    type_repr: str | None = None  # for non-tensors: repr(type(value))


@dataclass(frozen=True)
class Hint:
    kind: str
    message: str
    fix: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class LoadReport:
    missing: list[str]
    unexpected: list[str]
    shape_mismatch: list[dict[str, Any]]
    dtype_mismatch: list[dict[str, Any]]
    errors: list[str]  # load_state_dict's error_msgs besides missing/unexpected (size mismatch...)
    hints: list[Hint]
    notes: list[str]
    matched: int  # keys that would load cleanly
    model_keys: int
    checkpoint_keys: int

    @property
    def strict_ok(self) -> bool:
        return not (self.missing or self.unexpected or self.errors)

    def torch_message(self, class_name: str) -> str | None:
        """The RuntimeError text ``load_state_dict(strict=True)`` raises, or None if it would load."""
        msgs = list(self.errors)
        if self.unexpected:
            msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in self.unexpected)))
        if self.missing:
            msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in self.missing)))
        if not msgs:
            return None
        return "Error(s) in loading state_dict for {}:\n\t{}".format(class_name, "\n\t".join(msgs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "strict_ok": self.strict_ok,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "shape_mismatch": self.shape_mismatch,
            "dtype_mismatch": self.dtype_mismatch,
            "errors": self.errors,
            "hint": " ".join(h.message for h in self.hints) or None,
            "hints": [h.to_dict() for h in self.hints],
            "notes": self.notes,
            "matched": self.matched,
            "model_keys": self.model_keys,
            "checkpoint_keys": self.checkpoint_keys,
        }


def _shape_str(shape: tuple[int, ...]) -> str:
    return str(torch.Size(shape))


def _local_state(module: nn.Module) -> dict[str, torch.Tensor]:
    persistent = {k: v for k, v in module._buffers.items() if k not in module._non_persistent_buffers_set}
    return {k: v for k, v in [*module._parameters.items(), *persistent.items()] if v is not None}


def _has_custom_set_extra_state(module: nn.Module) -> bool:
    return getattr(type(module), "set_extra_state", nn.Module.set_extra_state) is not nn.Module.set_extra_state


def load_report(
    model: nn.Module,
    entries: Mapping[str, Entry],
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> LoadReport:
    """What ``model.load_state_dict(sd, strict=True)`` would report for a state_dict with these entries."""
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    shape_mm: list[dict[str, Any]] = []
    dtype_mm: list[dict[str, Any]] = []
    notes: list[str] = []
    matched = 0
    custom: set[str] = set()

    def load(module: nn.Module, local: dict[str, Entry | None], prefix: str) -> None:
        nonlocal matched
        local_md = {} if metadata is None else metadata.get(prefix[:-1], {})
        version = local_md.get("version")
        local = dict(local)  # _load_from_state_dict may add or drop keys, in its own copy
        cls = type(module)
        if cls._load_from_state_dict not in _MIRRORED or module._load_state_dict_pre_hooks:
            custom.add(cls.__name__)
        if isinstance(module, _NormBase) and (version is None or version < 2) and module.track_running_stats:
            key = prefix + "num_batches_tracked"
            if key not in local:
                local[key] = None  # BatchNorm fills it in (a checkpoint from before it existed)
        if isinstance(module, _InstanceNorm) and version is None and not module.track_running_stats:
            found = [prefix + n for n in ("running_mean", "running_var") if prefix + n in local]
            if found:
                errors.append(
                    "Unexpected running stats buffer(s) {names} for {klass} with track_running_stats=False. "
                    "If state_dict is a checkpoint saved before 0.4.0, this may be expected because {klass} "
                    "does not track running stats by default since 0.4.0. Please remove these keys from "
                    "state_dict. If the running stats are actually needed, instead set track_running_stats=True "
                    "in {klass} to enable them. See the documentation of {klass} for details.".format(
                        names=" and ".join(f'"{k}"' for k in found), klass=cls.__name__
                    )
                )
                for k in found:
                    local.pop(k)
        state = _local_state(module)
        for name, param in state.items():
            key = prefix + name
            if key not in local:
                missing.append(key)
                continue
            entry = local[key]
            if entry is None:  # filled in by BatchNorm
                matched += 1
                continue
            if entry.shape is None:
                errors.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or Tensor-like object '
                    f"from checkpoint but received {entry.type_repr}"
                )
                continue
            lazy = nn.parameter.is_lazy(param)
            shape = entry.shape
            if not lazy and len(param.shape) == 0 and len(shape) == 1 and shape[0] == 1:
                shape = ()  # torch's backward-compatibility rule for 0.3-era scalars
            if not lazy and shape != tuple(param.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {_shape_str(entry.shape)} from checkpoint, "
                    f"the shape in current model is {param.shape}."
                )
                shape_mm.append({"key": key, "checkpoint": list(entry.shape), "model": list(param.shape)})
                continue
            matched += 1
            if entry.dtype is not None and entry.dtype != dtype_name(param.dtype):
                dtype_mm.append({"key": key, "checkpoint": entry.dtype, "model": dtype_name(param.dtype)})
        extra_key = prefix + _EXTRA
        if _has_custom_set_extra_state(module):
            if extra_key in local:
                matched += 1
            else:
                missing.append(extra_key)
        elif extra_key in local:
            unexpected.append(extra_key)
        for key in local:
            if key.startswith(prefix) and key != extra_key:
                parts = key[len(prefix) :].split(".", 1)
                if len(parts) > 1:
                    if parts[0] not in module._modules:
                        unexpected.append(key)
                elif parts[0] not in state:
                    unexpected.append(key)
        for name, child in module._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                load(child, {k: v for k, v in local.items() if k.startswith(child_prefix)}, child_prefix)

    load(model, dict(entries.items()), "")
    if custom:
        notes.append(
            "custom loading in " + ", ".join(sorted(custom)) + ": its _load_from_state_dict or load hooks may "
            "accept or reject keys differently from this report, which follows nn.Module's rules"
        )
    hints = _hints(model, entries, missing, unexpected, dtype_mm)
    return LoadReport(
        missing=missing,
        unexpected=unexpected,
        shape_mismatch=shape_mm,
        dtype_mismatch=dtype_mm,
        errors=errors,
        hints=hints,
        notes=notes,
        matched=matched,
        model_keys=len(model.state_dict()),
        checkpoint_keys=len(entries),
    )


_PREFIX_CAUSES = {
    "module.": "saved from nn.DataParallel / DistributedDataParallel (a `module.` prefix)",
    "model.": "saved from a wrapper such as a Lightning module (a `model.` prefix)",
    "_orig_mod.": "saved from a torch.compile'd model (an `_orig_mod.` prefix)",
}


def _prefixes(key: str) -> Iterator[str]:
    parts = key.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i]) + "."


def _best_prefix(keys: list[str], targets: set[str]) -> tuple[str, int] | None:
    """The dotted prefix that, stripped from the most of ``keys``, turns them into ``targets``."""
    counts: dict[str, int] = {}
    for key in keys:
        for p in _prefixes(key):
            if key[len(p) :] in targets:
                counts[p] = counts.get(p, 0) + 1
    if not counts:
        return None
    prefix, n = max(counts.items(), key=lambda kv: (kv[1], -len(kv[0])))
    return (prefix, n) if n * 2 >= len(keys) else None


def _hints(
    model: nn.Module,
    entries: Mapping[str, Entry],
    missing: list[str],
    unexpected: list[str],
    dtype_mm: list[dict[str, Any]],
) -> list[Hint]:
    hints: list[Hint] = []
    expected = set(model.state_dict().keys())
    strip = _best_prefix(unexpected, expected) if unexpected else None
    if strip:
        prefix, n = strip
        cause = _PREFIX_CAUSES.get(prefix, f"saved with an extra `{prefix}` prefix")
        hints.append(
            Hint(
                "strip_prefix",
                f"{n} checkpoint keys match the model once `{prefix}` is removed: {cause}. "
                f"Load with strip_prefix={prefix!r}.",
                {"strip_prefix": prefix},
            )
        )
    elif missing:
        add = _best_prefix(missing, set(entries))
        if add:
            prefix, n = add
            hints.append(
                Hint(
                    "add_prefix",
                    f"{n} model keys match the checkpoint without their `{prefix}` prefix: the checkpoint was "
                    f"saved from the inner module. Load with add_prefix={prefix!r}.",
                    {"add_prefix": prefix},
                )
            )
    # Tied weights: one tensor under two names in the model, saved once (safetensors drops duplicates).
    by_tensor: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(p), []).append(name)
    tied_missing = []
    for names in by_tensor.values():
        if len(names) > 1:
            present = [n for n in names if n in entries]
            tied_missing += [(n, present[0]) for n in names if n in missing and present]
    if tied_missing:
        pairs = ", ".join(f"{m} (tied to {p})" for m, p in tied_missing)
        hints.append(
            Hint(
                "tied_weights",
                f"Missing {pairs}: tied weights saved once. Loading the saved name fills both, so "
                "strict=False loads the model completely.",
                {"strict": False},
            )
        )
    non_persistent = {
        f"{mname}.{b}" if mname else b
        for mname, mod in model.named_modules()
        for b in mod._non_persistent_buffers_set
    }
    np_unexpected = [k for k in unexpected if k in non_persistent]
    if np_unexpected:
        hints.append(
            Hint(
                "non_persistent_buffer",
                f"{', '.join(np_unexpected)}: non-persistent buffer(s) in this model (recomputed, not loaded); "
                "the checkpoint saved them anyway. strict=False ignores them.",
                {"strict": False},
            )
        )
    nbt = [k for k in missing if k.endswith("num_batches_tracked")]
    if nbt and len(nbt) == len(missing):
        hints.append(
            Hint(
                "num_batches_tracked",
                "Only BatchNorm's num_batches_tracked counters are missing: harmless, strict=False is safe.",
                {"strict": False},
            )
        )
    if dtype_mm:
        casts = sorted({f"{d['checkpoint']} -> {d['model']}" for d in dtype_mm})
        hints.append(
            Hint(
                "dtype",
                f"{len(dtype_mm)} tensors differ in dtype ({', '.join(casts)}): load_state_dict copies with a "
                "cast, so this is not an error, but precision may change.",
            )
        )
    return hints


# ---------------------------------------------------------------------------
# Checkpoint against a served model


def remap(keys: list[str], strip_prefix: str = "", add_prefix: str = "") -> dict[str, str]:
    """New key -> checkpoint key after removing ``strip_prefix`` (where present) and adding ``add_prefix``."""
    out: dict[str, str] = {}
    for k in keys:
        new = k[len(strip_prefix) :] if strip_prefix and k.startswith(strip_prefix) else k
        out[add_prefix + new] = k
    return out


def _remap_metadata(md: Mapping[str, Any] | None, strip_prefix: str, add_prefix: str) -> dict[str, Any] | None:
    if md is None:
        return None
    out: dict[str, Any] = {}
    s, a = strip_prefix.rstrip("."), add_prefix.rstrip(".")
    for k, v in md.items():
        if s and (k == s or k.startswith(s + ".")):
            k = k[len(s) :].lstrip(".")
        if a:
            k = f"{a}.{k}" if k else a
        out[k] = v
    return out


def _entries(ckpt: Checkpoint, strip_prefix: str, add_prefix: str) -> tuple[dict[str, Entry], dict[str, str]]:
    if ckpt.state_dict_path is None:
        raise InvalidRequest(f"{ckpt.name} has no flat state_dict to load into a model", checkpoint=ckpt.id)
    tensors = ckpt.state_dict_keys()
    raw: dict[str, Entry] = {k: Entry(info.shape, info.dtype) for k, info in tensors.items()}
    for k, type_repr in ckpt.state_dict_extra.items():
        raw[k] = Entry(None, None, type_repr)
    names = remap(list(raw), strip_prefix, add_prefix)
    return {new: raw[old] for new, old in names.items()}, names


def checkpoint_report(
    ckpt: Checkpoint, loaded: LoadedModel, *, strip_prefix: str = "", add_prefix: str = ""
) -> LoadReport:
    """The compare report for a checkpoint's state_dict against a served model (no tensor read)."""
    entries, _ = _entries(ckpt, strip_prefix, add_prefix)
    md = _remap_metadata(ckpt.state_dict_metadata, strip_prefix, add_prefix)
    with loaded.lock:
        return load_report(loaded.module, entries, md)


def compare_to_dict(ckpt: Checkpoint, loaded: LoadedModel, report: LoadReport, **fix: str) -> dict[str, Any]:
    return {
        "checkpoint": ckpt.id,
        "model": loaded.id,
        "model_class": loaded.class_name,
        "state_dict_path": ckpt.state_dict_path,
        **{k: v for k, v in fix.items() if v},
        **report.to_dict(),
        "torch_message": report.torch_message(loaded.class_name),
    }


def load_into_model(
    ckpt: Checkpoint,
    loaded: LoadedModel,
    *,
    strict: bool = True,
    strip_prefix: str = "",
    add_prefix: str = "",
) -> dict[str, Any]:
    """Load the checkpoint's state_dict into the served model; the original stays restorable by reset()."""
    if loaded.meta:
        raise NoValues(f"model {loaded.id!r} is on the meta device: it has no storage to load into", model=loaded.id)
    entries, names = _entries(ckpt, strip_prefix, add_prefix)
    md = _remap_metadata(ckpt.state_dict_metadata, strip_prefix, add_prefix)
    with loaded.lock:
        report = load_report(loaded.module, entries, md)
        if strict and not report.strict_ok:
            raise LoadRefused(
                f"strict load refused, nothing was changed: {report.torch_message(loaded.class_name)}",
                report=report.to_dict(),
            )
        # Non-strict load_state_dict still raises on size mismatches and non-tensors: leave those out.
        # _extra_state values are not tensors by design: they go to set_extra_state as saved.
        skip = {d["key"] for d in report.shape_mismatch} | {
            k for k, e in entries.items() if e.shape is None and names[k] not in ckpt.extra_state_values
        }
        sd: OrderedDict[str, Any] = OrderedDict()
        for new, old in names.items():
            if new in skip:
                continue
            sd[new] = ckpt.extra_state_values[old] if entries[new].shape is None else ckpt.state_dict_tensor(old)
        if md is not None:
            sd._metadata = md  # type: ignore[attr-defined]
        loaded.ensure_original()
        try:
            result = loaded.module.load_state_dict(sd, strict=strict)
        except RuntimeError as err:
            raise LoadRefused(f"load_state_dict failed: {str(err).splitlines()[0]}", report=report.to_dict()) from None
        finally:
            loaded.changed()  # memoised views of the model are stale now (even after a partial copy)
    return {
        "model": loaded.id,
        "checkpoint": ckpt.id,
        "strict": strict,
        "loaded": len(sd) - len(result.unexpected_keys),
        "missing": list(result.missing_keys),
        "unexpected": list(result.unexpected_keys),
        "skipped": sorted(skip),
        "modified": loaded.modified,
        "report": report.to_dict(),
    }


# ---------------------------------------------------------------------------
# Optimizer parameter names


def optimizer_names(opt: OptimizerInfo, ckpt: Checkpoint, model: nn.Module | None) -> dict[str, Any]:
    """Parameter names for an optimizer's state: from ``param_names``, else by order against a model (a guess)."""
    if opt.names_from == "param_names":
        return {"names_from": "param_names", "warning": None, "names": {p.id: p.name for p in opt.params}}
    if model is None:
        return {"names_from": None, "warning": "the file has no param_names; pick a model to map ids by order", "names": {}}
    params = list(model.named_parameters())
    ids = opt.param_ids
    if len(ids) != len(params):
        return {
            "names_from": None,
            "warning": f"the optimizer holds {len(ids)} parameters but the model has {len(params)}: no mapping by order",
            "names": {},
        }
    names = {pid: name for pid, (name, _) in zip(ids, params, strict=True)}
    agree = disagree = 0
    for p, (_name, param) in zip(opt.params, params, strict=True):
        for key in p.tensors.values():
            info = ckpt.tensors.get(key)
            if info is None or not info.shape:
                continue  # scalars such as step say nothing about the parameter
            if info.shape == tuple(param.shape):
                agree += 1
            else:
                disagree += 1
    warning = (
        "guess: the file has no param_names, so ids were matched to model.parameters() in order "
        f"({agree} state shapes agree, {disagree} disagree)"
    )
    return {"names_from": "model order (guess)", "warning": warning, "names": names, "shapes_disagree": disagree}


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
