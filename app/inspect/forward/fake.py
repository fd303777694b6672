"""Run a served model on fake tensors without touching it: ``fake_forward(module)``.

Inside the context every parameter, buffer and plain tensor attribute of the model
(also those of modules kept in plain lists or dicts) is replaced by a fake copy
(``torch._subclasses.FakeTensorMode``: shapes, dtypes and devices, no storage), so
``module(*args)`` under ``ctx.mode`` computes shapes and nothing else. We swap the
tensors ourselves rather than using ``torch.func.functional_call``: that one swaps
registered tensors only, and an in-place op on a real tensor under FakeTensorMode
writes the real tensor (checked on torch 2.13: ``self.count += 1`` on a plain tensor
attribute changed it).

On exit the real tensors are back, and the model is what it was: attributes a
``forward`` set or replaced (a cache, ``self.training``) are restored and listed in
``ctx.restored``; the global RNG state is restored. Models on the meta device get fake
tensors on the CPU (or ``device``): meta kernels are not the CPU's (attention takes
another path there), and the CPU's are what a FLOP count should describe.

One fake forward runs at a time in the process: ``FlopCounterMode`` tracks modules with
torch's global module hooks, which would see another thread's modules.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from torchscope.inspect.forward.sources import ResolvedInputs, Values
from torchscope.inspect.forward.spec import build_values, empty_tensor
from torchscope.inspect.structure import is_uninitialized

_RUN_LOCK = threading.RLock()  # process-wide on purpose: see the module docstring
_CONTAINERS = (list, tuple, dict)
_INTERNALS = frozenset(vars(nn.Module()))
# FakeTensorMode logs a traceback at ERROR for every op whose meta kernel raises (a shape bug
# in the user's model): the error is our answer, not a log line.
_FAKE_LOGGER = "torch._subclasses.fake_tensor"


def module_device(module: nn.Module) -> torch.device:
    """Where the model's tensors live (its first initialized parameter, else buffer; CPU for none)."""
    for t in [*module.parameters(), *module.buffers()]:
        if not is_uninitialized(t):
            return t.device
    return torch.device("cpu")


def all_modules(root: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """Every module reachable from ``root``: registered ones, and those kept in plain lists/dicts (by path)."""
    found: dict[int, tuple[str, nn.Module]] = {}
    stack: list[tuple[str, nn.Module]] = [("", root)]
    while stack:
        path, module = stack.pop()
        for sub_path, sub in module.named_modules(prefix=path):
            if id(sub) in found:
                continue
            found[id(sub)] = (sub_path, sub)
            for attr, value in vars(sub).items():
                if attr in _INTERNALS or not isinstance(value, _CONTAINERS):
                    continue
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, item in items:
                    if isinstance(item, nn.Module) and id(item) not in found:
                        stack.append((f"{sub_path}.{attr}[{key}]" if sub_path else f"{attr}[{key}]", item))
    return found


@dataclass
class _Snapshot:
    """A module's attributes and registered tensors/children, by identity, before a forward."""

    path: str
    module: nn.Module
    attrs: dict[str, Any]
    params: dict[str, Any]
    buffers: dict[str, Any]
    modules: dict[str, Any]

    @classmethod
    def take(cls, path: str, m: nn.Module) -> _Snapshot:
        return cls(path, m, dict(vars(m)), dict(m._parameters), dict(m._buffers), dict(m._modules))

    def restore(self) -> list[str]:
        """Put back anything the forward changed; returns the names it had changed."""
        m = self.module
        changed = []
        for live, saved in (
            (vars(m), self.attrs),
            (m._parameters, self.params),
            (m._buffers, self.buffers),
            (m._modules, self.modules),
        ):
            if live.keys() != saved.keys() or any(live[k] is not v for k, v in saved.items()):
                changed += sorted(k for k in live.keys() | saved.keys() if live.get(k, None) is not saved.get(k, None))
                live.clear()
                live.update(saved)
        prefix = self.path + "." if self.path else ""
        return [prefix + c for c in changed]


@dataclass
class FakeModel:
    """What ``fake_forward`` yields: the mode to run under, the fake device, and input helpers."""

    module: nn.Module
    mode: FakeTensorMode
    device: torch.device
    meta: bool
    fakes: dict[int, torch.Tensor] = field(default_factory=dict)  # id(real tensor) -> its fake
    restored: list[str] = field(default_factory=list)  # attributes a forward changed (put back on exit)

    def fake(self, t: torch.Tensor) -> torch.Tensor:
        """A fake copy of a real (or meta) tensor: same shape, dtype, requires_grad; device as the run's."""
        out = self.fakes.get(id(t))
        if out is None:
            if t.is_meta:
                out = self.mode.fake_tensor_converter.from_meta_and_device(self.mode, t, self.device)
                if t.requires_grad and t.is_leaf:
                    out.requires_grad_(True)
            else:
                out = self.mode.from_tensor(t, static_shapes=True)
            self.fakes[id(t)] = out
        return out

    def inputs(self, resolved: ResolvedInputs) -> Values:
        """``(args, kwargs)`` as fake tensors: from the source's real values if any, else from the spec."""
        if resolved.values is not None:
            args, kwargs = resolved.values
            return _map_tensors(args, self.fake), _map_tensors(kwargs, self.fake)
        with self.mode:
            return build_values(resolved.spec, lambda s: empty_tensor(s, self.device))


def _map_tensors(value: Any, fn: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """The global RNG state (CPU, and CUDA when in use) is the same after as before."""
    in_use = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    devices = list(range(torch.cuda.device_count())) if in_use else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextlib.contextmanager
def _quiet_fake_logger() -> Iterator[None]:
    logger = logging.getLogger(_FAKE_LOGGER)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """One forward at a time in this process; the global RNG restored after; fake-op failures not logged."""
    with _RUN_LOCK, preserved_rng(), _quiet_fake_logger():
        yield


@contextlib.contextmanager
def fake_forward(module: nn.Module, *, device: torch.device | str | None = None) -> Iterator[FakeModel]:
    """Swap the model's tensors for fakes for the duration; see the module docstring.

    ``device``: where fake tensors live (whose kernels are counted); default: the model's
    device, the CPU for a model on meta. Uninitialized lazy parameters are left alone: run
    a model with lazy modules on a copy (``run.forward_on`` does).
    """
    real_device = module_device(module)
    meta = real_device.type == "meta"
    target = torch.device(device) if device is not None else torch.device("cpu") if meta else real_device
    with isolated():
        modules = all_modules(module)
        snapshots = [_Snapshot.take(path, m) for path, m in modules.values()]
        mode = FakeTensorMode(allow_non_fake_inputs=True)
        ctx = FakeModel(module, mode, target, meta)
        swapped: list[tuple[dict[str, Any], str, Any]] = []
        try:
            for _path, m in modules.values():
                tables: tuple[dict[str, Any], ...] = (m._parameters, m._buffers)
                for table in tables:
                    for name, t in table.items():
                        if t is not None and not is_uninitialized(t):
                            swapped.append((table, name, t))
                            table[name] = ctx.fake(t)
                attrs = vars(m)
                for name, value in list(attrs.items()):
                    if name in _INTERNALS:
                        continue
                    if isinstance(value, torch.Tensor):
                        swapped.append((attrs, name, value))
                        attrs[name] = ctx.fake(value)
                    elif isinstance(value, _CONTAINERS) and _has_tensor(value):
                        swapped.append((attrs, name, value))
                        attrs[name] = _map_tensors(value, ctx.fake)
            yield ctx
        finally:
            for table, name, original in reversed(swapped):
                table[name] = original
            for snap in snapshots:
                ctx.restored += snap.restore()


def _has_tensor(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, torch.Tensor) for v in items)
