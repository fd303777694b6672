"""What the graph's overlays show about modules, read from the real model (not the capture).

* ``params``: parameter elements in a module's subtree, tied weights counted once;
* weight statistics (``std``, ``abs_mean`` = |mean|, ``zero_fraction``) over all the
  parameters of a module's subtree (or all those an op reads), pooled exactly from each
  tensor's statistics as ``histograms.py`` computes them (finite values; NaN/Inf left out);
* a structural ``signature``: class, ``extra_repr``, parameter/buffer shapes and dtypes and
  the children's signatures, hashed. Identical blocks (GPT-2's ``h.0`` ... ``h.11``) share
  one, and ``repeats`` says how many modules have it.

Models on the meta device (or with lazy parameters) have no values: statistics are None.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from torchscope.inspect import histograms as H

STATS = ("std", "abs_mean", "zero_fraction")


@dataclass(frozen=True)
class TensorFact:
    name: str
    kind: str  # "param" | "buffer"
    module: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    # finite count, mean, std, mean |x|, zeros (None: no values to read)
    moments: tuple[int, float, float | None, float, int] | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape), "dtype": self.dtype, "numel": self.numel}


@dataclass
class ModuleFacts:
    classes: dict[str, str]
    params: dict[str, int]  # path -> parameter elements in its subtree
    own_tensors: dict[str, list[str]]  # path -> its direct parameters/buffers (canonical names)
    subtree_params: dict[str, list[str]]  # path -> every parameter in its subtree (canonical names)
    signature: dict[str, str]
    repeats: dict[str, int]  # signature -> how many modules share it
    tensors: dict[str, TensorFact]  # canonical name -> facts (aliases of tied tensors map here too)
    has_values: bool
    children: dict[str, int]  # path -> number of child modules

    def stats(self, names: Iterable[str]) -> dict[str, float | None] | None:
        """Pooled statistics of these parameters; None when there are none or they have no values."""
        found = [self.tensors[n].moments for n in dict.fromkeys(names) if n in self.tensors]
        moments = [m for m in found if m is not None]
        if not moments or len(moments) < len(found):
            return None
        return pool(moments)


def pool(moments: list[tuple[int, float, float | None, float, int]]) -> dict[str, float | None]:
    """Exact pooled mean / std (Bessel) / |x| mean / zero fraction of several tensors' statistics."""
    n = sum(m[0] for m in moments)
    zeros = sum(m[4] for m in moments)
    if n == 0:
        return {"std": None, "abs_mean": None, "zero_fraction": None}
    mean = sum(m[0] * m[1] for m in moments) / n
    ss = sum((c - 1) * (s or 0.0) ** 2 + c * (mu - mean) ** 2 for c, mu, s, _a, _z in moments if c > 0)
    std = math.sqrt(ss / (n - 1)) if n > 1 else None
    return {"std": std, "abs_mean": abs(mean), "zero_fraction": zeros / n}


def signatures(root: nn.Module) -> dict[str, str]:
    """Path -> structural signature (12 hex digits); equal for structurally identical modules."""
    by_id: dict[int, str] = {}

    def sig(m: nn.Module) -> str:
        known = by_id.get(id(m))
        if known is not None:
            return known
        parts: list[Any] = [type(m).__module__, type(m).__qualname__, m.extra_repr()]
        parts += [("p", n, tuple(p.shape), str(p.dtype)) for n, p in m.named_parameters(recurse=False)]
        parts += [("b", n, tuple(b.shape), str(b.dtype)) for n, b in m.named_buffers(recurse=False)]
        parts += [("c", n, sig(c)) for n, c in m.named_children()]
        digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:12]
        by_id[id(m)] = digest
        return digest

    return {path: sig(m) for path, m in root.named_modules()}


def module_facts(root: nn.Module) -> ModuleFacts:
    """Parameters, statistics and signatures of every module (call under the model's lock)."""
    overview = H.model_overview(root)
    tensors: dict[str, TensorFact] = {}
    for row in overview.tensors:
        st = row.stats
        moments = None
        if st is not None and st.mean is not None:
            finite = row.numel - st.nan - st.inf
            moments = (finite, st.mean, st.std, st.mean_abs or 0.0, st.zeros)
        fact = TensorFact(row.name, "param" if row.kind == "parameter" else "buffer", row.module, tuple(row.shape), row.dtype, row.numel, moments)
        tensors[row.name] = fact
        for alias in row.aliases:
            tensors.setdefault(alias, fact)
    classes = {path: type(m).__name__ for path, m in root.named_modules()}
    params = dict.fromkeys(classes, 0)
    own: dict[str, list[str]] = {p: [] for p in classes}
    subtree: dict[str, list[str]] = {p: [] for p in classes}
    seen: set[str] = set()
    for row in overview.tensors:
        if row.name in seen:
            continue
        seen.add(row.name)
        if row.module in own:
            own[row.module].append(row.name)
        if row.kind != "parameter":
            continue
        for path in _ancestors(row.module):
            if path in params:
                params[path] += row.numel
                subtree[path].append(row.name)
    sigs = signatures(root)
    repeats: dict[str, int] = {}
    for s in sigs.values():
        repeats[s] = repeats.get(s, 0) + 1
    has_values = any(f.moments is not None for f in tensors.values())
    children = {path: len(m._modules) for path, m in root.named_modules()}
    return ModuleFacts(classes, params, own, subtree, sigs, repeats, tensors, has_values, children)


def _ancestors(path: str) -> list[str]:
    """``a.b.c`` -> ``["", "a", "a.b", "a.b.c"]``."""
    if not path:
        return [""]
    parts = path.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]
