"""Follow a live nn.Module that its owner changes outside the server (models served from Python).

``torchscope.show(model)`` serves an object the user keeps training, re-initialising and
editing in the same process. Before each request the served model's fingerprint is
compared with the last one, in two parts:

- **structure** (memoised views depend on it): the module objects in walk order and their
  ``training`` flags; every parameter and buffer object, its ``requires_grad``, shape and
  ``data_ptr()`` (``.half()``, ``.to()`` and ``p.data = ...`` keep the Parameter object and
  its version counter but move its storage); and, after any module/parameter/buffer
  registration in the process (torch's global registration hooks), every local name.
- **values**: the tensors' version counters (torch bumps them on every in-place write:
  optimizer steps, ``nn.init``, ``load_state_dict``), plus the steps of optimizers that hold
  the model's tensors: fused optimizers write without bumping the counters (seen on torch
  2.13, CPU ``Adam(fused=True)``), and BatchNorm's running statistics are updated the same way
  (its ``num_batches_tracked`` is bumped, which is what catches a forward in train mode).

Not seen: in-place writes through ``.data`` (``p.data.normal_()``, a hand-written SGD step
``p.data -= lr * p.grad``) or through a NumPy view: ``.data`` has a version counter of its
own, by design. Memoised statistics of a live model are therefore also checked against
``content_stamp`` (a digest of the tensors they were computed from) before they are reused,
so numbers are never stale; only the page's "changed" notice can miss such a write.

Cost: a few list comprehensions over modules and tensors, at C speed per element
(``benchmarks/live.py``: GPT-2 small and a 20,000-module model).
"""

from __future__ import annotations

import enum
import time
import weakref
from collections.abc import Iterable
from itertools import chain
from operator import attrgetter, methodcaller
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from torchscope.inspect.structure import is_uninitialized, paused_gc

# A module tree deeper than this, or one that reaches a module through itself, is walked by
# torch's own modules() (which de-duplicates) instead of the fast level-by-level walk.
MAX_DEPTH = 10_000
MAX_WALK = 5_000_000

_chain = chain.from_iterable
_training = attrgetter("training")
_version = attrgetter("_version")
_requires_grad = attrgetter("requires_grad")
_shape = attrgetter("shape")
_data_ptr = methodcaller("data_ptr")


class Change(enum.IntEnum):
    """What a check found, from least to most: values only, or structure (and values)."""

    NONE = 0
    VALUES = 1
    STRUCTURE = 2


class TorchHooks:
    """Counters fed by torch's process-wide hooks, installed while a server of live models runs.

    - module/parameter/buffer registration (``__setattr__``, ``register_*``, ``add_module``):
      a renamed or re-registered entry keeps its object ids, so names are compared after one;
    - optimizer steps, per optimizer: what fused optimizers write is invisible to version counters.

    The hooks only count (one dict update); they never change what they observe.
    """

    def __init__(self) -> None:
        self.registrations = 0
        # id(optimizer) -> (weak reference, steps); a plain dict: list(d.values()) is atomic.
        self._steps: dict[int, tuple[weakref.ref[torch.optim.Optimizer], int]] = {}
        self._handles: list[RemovableHandle] = []

    @property
    def installed(self) -> bool:
        return bool(self._handles)

    def install(self) -> None:
        if self._handles:
            return
        from torch.nn.modules import module as torch_module
        from torch.optim.optimizer import register_optimizer_step_post_hook

        def registered(*_: Any) -> None:
            self.registrations += 1

        self._handles = [
            torch_module.register_module_module_registration_hook(registered),
            torch_module.register_module_parameter_registration_hook(registered),
            torch_module.register_module_buffer_registration_hook(registered),
            register_optimizer_step_post_hook(self._stepped),
        ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._steps.clear()

    def _stepped(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        key = id(optimizer)
        entry = self._steps.get(key)
        if entry is None or entry[0]() is not optimizer:  # new, or a dead one's id reused
            self._steps[key] = (weakref.ref(optimizer), 1)
        else:
            self._steps[key] = (entry[0], entry[1] + 1)

    def optimizer_steps(self) -> list[tuple[torch.optim.Optimizer, int]]:
        """Each live optimizer that has stepped while the hooks were installed, with its step count."""
        out = []
        for ref, steps in list(self._steps.values()):
            opt = ref()
            if opt is not None:
                out.append((opt, steps))
        return out


def walk_modules(root: nn.Module) -> list[nn.Module]:
    """Every module under ``root``, level by level (a module shared at two places comes twice)."""
    out = [root]
    level = [root]
    for _ in range(MAX_DEPTH):
        level = [c for m in level for c in m._modules.values() if c is not None]
        if not level:
            return out
        out += level
        if len(out) > MAX_WALK:
            break
    return list(root.modules())  # a cycle or an absurd depth: torch's walk de-duplicates


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    """The slow, safe per-tensor key, for tensors whose shape or storage cannot be read.

    (Lazy modules' UninitializedParameter raises on both; sparse tensors have no data_ptr.)
    """
    try:
        ptr = t.data_ptr()
    except (RuntimeError, ValueError, NotImplementedError):
        ptr = None
    try:
        shape: Any = tuple(t.shape)
    except (RuntimeError, ValueError):
        shape = None
    return (type(t), ptr, shape, t.dtype, t.device)


def _names(mods: list[nn.Module]) -> list[Any]:
    names: list[Any] = list(_chain(map(dict.keys, map(attrgetter("_modules"), mods))))
    names.append(None)
    names += _chain(map(dict.keys, map(attrgetter("_parameters"), mods)))
    names.append(None)
    names += _chain(map(dict.keys, map(attrgetter("_buffers"), mods)))
    names.append(None)
    names += _chain(map(attrgetter("_non_persistent_buffers_set"), mods))
    return names


class ModelWatch:
    """The last fingerprint of one live model, and ``check()``, which says what changed since."""

    def __init__(self, module: nn.Module, hooks: TorchHooks | None = None) -> None:
        self.module = module
        self.hooks = hooks
        self._objects: tuple[list[Any], ...] | None = None
        self._flags: tuple[list[bool], ...] | None = None
        self._values: list[int] | None = None
        self._steps = 0
        self._names: list[Any] | None = None
        self._registrations = -1
        self._tensor_ids: frozenset[int] = frozenset()
        # Whether an optimizer holds any of this model's tensors (recomputed per structure).
        self._holds: weakref.WeakKeyDictionary[torch.optim.Optimizer, bool] = weakref.WeakKeyDictionary()
        self._refs: list[weakref.ref[Any]] = []
        self._died = False
        # Whether the last check found modules or tensors replaced (not only flags or values).
        self.replaced = False
        self.last_cost_s = 0.0  # duration of the last check: the page polls less often when it is high

    def check(self) -> Change:
        """Compare the model with its last fingerprint and keep the new one; the first call is NONE."""
        started = time.perf_counter()
        try:
            return self._check()
        except RuntimeError:
            # "dictionary changed size during iteration": the user's thread changed the module
            # tree while it was walked. Count it as a structure change (the next check compares
            # with the last complete fingerprint, and settles).
            self.replaced = True
            return Change.STRUCTURE
        finally:
            self.last_cost_s = time.perf_counter() - started

    @paused_gc  # a check allocates one small object per tensor: see structure.paused_gc
    def _check(self) -> Change:
        hooks = self.hooks
        registrations = hooks.registrations if hooks is not None else -1
        mods = walk_modules(self.module)
        tensors: list[torch.Tensor] = [t for m in mods for t in m._parameters.values() if t is not None]
        tensors += [t for m in mods for t in m._buffers.values() if t is not None]
        try:
            ptrs: list[Any] = list(map(_data_ptr, tensors))
            shapes: list[Any] = list(map(_shape, tensors))
        except (RuntimeError, ValueError, NotImplementedError):
            ptrs = list(map(_tensor_key, tensors))
            shapes = []
        ids = list(map(id, tensors))
        objects = (list(map(id, mods)), ids, ptrs, shapes)
        flags = (list(map(_training, mods)), list(map(_requires_grad, tensors)))
        values: list[int] = list(map(_version, tensors))
        first = self._objects is None
        change = Change.NONE
        self.replaced = self._died or objects != self._objects
        if self.replaced:
            change = Change.STRUCTURE
            self._tensor_ids = frozenset(ids)
            self._holds = weakref.WeakKeyDictionary()
            # ids are reused once an object is freed (`del m.fc; m.fc = nn.Linear(...)` can give the
            # new layer the old one's ids and storage address): weak references say when one dies.
            self._died = False
            self._refs = [weakref.ref(o, self._on_death) for o in chain(mods, tensors)]
        if flags != self._flags:
            change = Change.STRUCTURE
        # Names: only after a registration somewhere (hooks), or always without hooks.
        if change or registrations != self._registrations or registrations < 0:
            names = _names(mods)
            if names != self._names:
                change = Change.STRUCTURE
            self._names = names
            self._registrations = registrations
        steps = self._optimizer_steps()
        if change == Change.NONE and (values != self._values or steps != self._steps):
            change = Change.VALUES
        self._objects, self._flags, self._values, self._steps = objects, flags, values, steps
        if first:
            self.replaced = False
            return Change.NONE
        return change

    def _on_death(self, _ref: weakref.ref[Any]) -> None:
        self._died = True

    def _optimizer_steps(self) -> int:
        """Steps taken by optimizers that hold this model's tensors (fused ones bump no counters)."""
        if self.hooks is None:
            return 0
        total = 0
        for opt, steps in self.hooks.optimizer_steps():
            holds = self._holds.get(opt)
            if holds is None:
                ids = self._tensor_ids
                holds = any(id(p) in ids for group in opt.param_groups for p in group["params"])
                self._holds[opt] = holds
            if holds:
                total += steps
        return total




class _Unknown:
    """A stamp part equal to nothing (not even itself): what cannot be digested is recomputed."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


@torch.no_grad()
def content_stamp(tensors: Iterable[torch.Tensor], *, bits: bool = True) -> tuple[object, ...]:
    """A digest of tensors' values: the L2 norm of each (one fused pass, ``torch._foreach_norm``,
    as ``clip_grad_norm_`` computes it) and, with ``bits``, the xor of each one's bits
    (``torch.hash_tensor``, one more pass).

    The norm sees any write to many values (an init, an SGD step, a mask); the xor also sees
    one value changed by less than the norm's rounding. What keeps both (a permutation of the
    values) is the one write it cannot see. No copy; costs in ``benchmarks/live.py``.
    """
    xs = [t.detach() for t in tensors]
    real = [i for i, x in enumerate(xs) if _has_values(x) and x.is_floating_point()]
    try:
        norms = torch._foreach_norm([xs[i] for i in real]) if real else []
        by_index = {i: n.item() for i, n in zip(real, norms, strict=True)}
    except (RuntimeError, TypeError, NotImplementedError):  # e.g. float8: compared as unknown below
        by_index = {}
    out: list[object] = []
    for i, x in enumerate(xs):
        if not _has_values(x):
            out.append(None)  # no values: nothing can change them
            continue
        try:
            size = by_index[i] if i in by_index else x.abs().sum().item()
            xor = int(torch.hash_tensor(x).item()) if bits and not x.is_complex() else 0
        except (RuntimeError, TypeError, NotImplementedError, AttributeError, KeyError):
            out.append(_Unknown())  # float8, torch < 2.8: recompute rather than guess
            continue
        out.append((size, xor) if size == size else _Unknown())  # NaN: always recompute
    return tuple(out)


def _has_values(t: torch.Tensor) -> bool:
    return not (t.is_meta or is_uninitialized(t) or t.numel() == 0)
