"""Checkpoints against models and against each other, computed from metadata where possible.

``load_report`` says what ``model.load_state_dict(sd, strict=True)`` would say,
without reading a tensor: it walks the modules the way ``nn.Module.load_state_dict``
does (per-module local state, persistent buffers only, the 0-dim/1-element
backward-compatibility rule, BatchNorm's ``num_batches_tracked`` version rule,
``_extra_state``). Tests check it against torch's own RuntimeError text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.instancenorm import _InstanceNorm

from torchscope.inspect.checkpoints import Checkpoint, dtype_name
from torchscope.inspect.errors import InspectError, InvalidRequest, NoValues
from torchscope.inspect.load_hints import Hint, hints_for
from torchscope.inspect.registry import LoadedModel

_EXTRA = "_extra_state"
_COUNTER = "num_batches_tracked"
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
    # BatchNorm's num_batches_tracked: a scalar any checkpoint "matches" (torch even fills it in when
    # missing), so it says nothing about whether this is the model's checkpoint (issue 8).
    matched_counters: int = 0
    counter_keys: int = 0

    @property
    def matched_weights(self) -> int:
        """Matched keys other than the num_batches_tracked counters: what tells a checkpoint fits."""
        return self.matched - self.matched_counters

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
            "matched_counters": self.matched_counters,
            "counter_keys": self.counter_keys,
            "matched_weights": self.matched_weights,
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
    matched = counters = 0
    custom: set[str] = set()

    def load(module: nn.Module, local: dict[str, Entry | None], prefix: str) -> None:
        nonlocal matched, counters
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
                counters += 1
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
            counters += name == _COUNTER
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
    hints = hints_for(model, entries, missing, unexpected, dtype_mm)
    model_keys = list(model.state_dict())
    return LoadReport(
        missing=missing,
        unexpected=unexpected,
        shape_mismatch=shape_mm,
        dtype_mismatch=dtype_mm,
        errors=errors,
        hints=hints,
        notes=notes,
        matched=matched,
        model_keys=len(model_keys),
        checkpoint_keys=len(entries),
        matched_counters=counters,
        counter_keys=sum(1 for k in model_keys if k.rpartition(".")[2] == _COUNTER),
    )


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


def rank_models(ckpt: Checkpoint, models: Iterable[LoadedModel]) -> list[dict[str, Any]]:
    """Served models by how well the checkpoint's state_dict fits each (weights matched, after the prefix
    fix the report suggests), best first: the compare panel opens on the best, not on the first."""
    if ckpt.state_dict_path is None:
        return []
    rows = []
    for loaded in models:
        report = checkpoint_report(ckpt, loaded)
        fix = next((h.fix for h in report.hints if h.kind in ("strip_prefix", "add_prefix")), {})
        if fix:
            report = checkpoint_report(ckpt, loaded, **fix)
        rows.append({"model": loaded.id, "name": loaded.name, "matched_weights": report.matched_weights,
                     "weight_keys": report.model_keys - report.counter_keys, "strict_ok": report.strict_ok, **fix})
    # stable: among equals the registry's order stays
    return sorted(rows, key=lambda r: (-r["matched_weights"], not r["strict_ok"]))
