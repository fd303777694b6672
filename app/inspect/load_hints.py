"""Hints for a load report: prefixes to strip or add, tied weights, non-persistent buffers, dtypes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Hint:
    kind: str
    message: str
    fix: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix}


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


def hints_for(
    model: nn.Module,
    entries: Mapping[str, Any],
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
