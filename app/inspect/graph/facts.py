"""What the graph's overlays show about modules, read from the real model (not the capture).

* ``params``: parameter elements in a module's subtree, tied weights counted once;
* weight statistics (``std``, ``abs_mean`` = |mean|, ``zero_fraction``) over all the
  parameters of a module's subtree (or all those an op reads), pooled exactly from the
  per-tensor statistics of the Weights page's table (``overview.tensor_table``: finite
  values, NaN/Inf left out), so the two pages never disagree and the weights are read once;
* a structural ``signature``: class, ``extra_repr``, parameter/buffer shapes and dtypes and
  the children's signatures, hashed. Identical blocks (GPT-2's ``h.0`` ... ``h.11``) share
  one, and ``repeats`` says how many modules have it.

``ModuleFacts`` depends on the structure only; statistics are read from a ``TensorTable``
given at answer time (the values may change while the structure does not). Models on the
meta device (or with lazy parameters) have no values: statistics are None.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from torchscope.inspect import histograms as H
from torchscope.inspect.overview import TensorTable
from torchscope.inspect.structure import dtype_name, is_uninitialized

STATS = ("std", "abs_mean", "zero_fraction")


@dataclass(frozen=True)
class TensorFact:
    name: str
    kind: str  # "param" | "buffer"
    module: str
    shape: tuple[int, ...]
    dtype: str
    numel: int

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
    children: dict[str, int]  # path -> number of child modules

    def stats(self, table: TensorTable | None, names: Iterable[str]) -> dict[str, float | None] | None:
        """Pooled statistics of these tensors; None when there are none or one of them has no values."""
        if table is None:
            return None
        rows = [table.index_of(n) for n in dict.fromkeys(names) if n in self.tensors]
        if not rows or any(i is None or not table.summarised[i] for i in rows):
            return None
        return pool([_moments(table, i) for i in rows if i is not None])


Moments = tuple[int, float, float | None, float, int]  # finite count, mean, std, mean |x|, zeros


def _moments(table: TensorTable, i: int) -> Moments:
    n = int(table.n[i])
    if n == 0:
        return (0, 0.0, None, 0.0, 0)
    std = float(table.std[i])
    return (n, float(table.s1[i]) / n, None if math.isnan(std) else std, float(table.sa[i]) / n, int(table.zeros[i]))


def pool(moments: list[Moments]) -> dict[str, float | None]:
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
    """Parameters, tensors and signatures of every module (call under the model's lock)."""
    rows = H.named_tensors(root)  # the Weights table's rows and order: canonical names agree
    tensors: dict[str, TensorFact] = {}
    for row in rows:
        t = row.tensor
        shape = () if is_uninitialized(t) else tuple(t.shape)
        numel = 0 if is_uninitialized(t) else t.numel()
        kind = "param" if row.kind == "parameter" else "buffer"
        fact = TensorFact(row.name, kind, row.module, shape, dtype_name(t.dtype), numel)
        tensors[row.name] = fact
        for alias in row.aliases:
            tensors.setdefault(alias, fact)
    classes = {path: type(m).__name__ for path, m in root.named_modules()}
    params = dict.fromkeys(classes, 0)
    own: dict[str, list[str]] = {p: [] for p in classes}
    subtree: dict[str, list[str]] = {p: [] for p in classes}
    for row in rows:
        if row.module in own:
            own[row.module].append(row.name)
        if row.kind != "parameter":
            continue
        for path in _ancestors(row.module):
            if path in params:
                params[path] += tensors[row.name].numel
                subtree[path].append(row.name)
    sigs = signatures(root)
    repeats: dict[str, int] = {}
    for s in sigs.values():
        repeats[s] = repeats.get(s, 0) + 1
    children = {path: len(m._modules) for path, m in root.named_modules()}
    return ModuleFacts(classes, params, own, subtree, sigs, repeats, tensors, children)


def _ancestors(path: str) -> list[str]:
    """``a.b.c`` -> ``["", "a", "a.b", "a.b.c"]``."""
    if not path:
        return [""]
    parts = path.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]
