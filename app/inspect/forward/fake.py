"""Run a served model on fake tensors without touching it: ``fake_forward(module)``.

Inside the context, ``ctx.module`` is a *shadow* of the model: new module objects of the
same classes, with the same attributes, whose parameters, buffers and plain tensor
attributes (also those of modules kept in plain lists or dicts) are fake copies
(``torch._subclasses.FakeTensorMode``: shapes, dtypes and devices, no storage). Calling
it under ``ctx.mode`` computes shapes and nothing else, and the served model is never
touched, not even for the duration: its tensors are not swapped (other requests may read
them without our lock), its hook dicts get no hooks, and whatever a ``forward`` assigns
(a cache, ``self.training``) lands on the shadow. A shadow costs a few dict copies per
module, where ``copy.deepcopy`` costs 0.8 s on GPT-2-XL; ``torch.func.functional_call``
would swap tensors on the served model, and only registered ones (an in-place op on a
real tensor under FakeTensorMode writes the real tensor: checked on torch 2.13).

The global RNG state is restored on exit. Models on the meta device get fake tensors on
the CPU (or ``device``): meta kernels are not the CPU's (attention takes another path
there), and the CPU's are what a FLOP count should describe.

One fake forward runs at a time in the process: ``FlopCounterMode`` tracks modules with
torch's global module hooks, which would see another thread's modules.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.forward.sources import ResolvedInputs, Values
from torchscope.inspect.forward.spec import build_values, empty_tensor
from torchscope.inspect.structure import is_uninitialized

_PLAIN = (dict, OrderedDict, list, set)
MAX_SCRIPT_COPY_BYTES = 256 * 2**20  # TorchScript submodules are copied to run (see _Shadow.scripted)
_RUN_LOCK = threading.RLock()  # process-wide on purpose: see the module docstring
# FakeTensorMode logs a traceback at ERROR for every op whose meta kernel raises (a shape bug
# in the user's model): the error is our answer, not a log line.
_FAKE_LOGGER = "torch._subclasses.fake_tensor"


def module_device(module: nn.Module) -> torch.device:
    """Where the model's tensors live (its first initialized parameter, else buffer; CPU for none)."""
    for t in [*module.parameters(), *module.buffers()]:
        if not is_uninitialized(t):
            return t.device
    return torch.device("cpu")


@dataclass
class FakeModel:
    """What ``fake_forward`` yields: the shadow model, the mode to run it under, and input helpers."""

    module: nn.Module  # the shadow: call it under ``mode``
    mode: FakeTensorMode
    device: torch.device
    meta: bool
    fakes: dict[int, torch.Tensor] = field(default_factory=dict)  # id(real tensor) -> its fake
    shadows: dict[int, nn.Module] = field(default_factory=dict)  # id(served module) -> its shadow

    def fake(self, t: torch.Tensor) -> torch.Tensor:
        """A fake copy of a real (or meta) tensor: same shape, dtype, requires_grad; device as the run's."""
        out = self.fakes.get(id(t))
        if out is None:
            if t.layout == torch.strided and not t.is_quantized:
                # Through a meta tensor of the same shape, strides and dtype: 10x cheaper than
                # from_tensor (0.02 vs 0.2 ms a tensor, which adds up to seconds on 20,000 tensors).
                meta = t if t.is_meta else torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
                device = self.device if t.is_meta else t.device
                out = self.mode.fake_tensor_converter.from_meta_and_device(self.mode, meta, device)
                if t.requires_grad and t.is_leaf:
                    out.requires_grad_(True)
                if isinstance(t, nn.Parameter):
                    # A parameter's fake is a parameter too, as from_tensor makes it (meta_utils sets
                    # the same flag): torch.export's verifier refuses a state dict entry that is not
                    # (issue 11), and user code may test isinstance(p, nn.Parameter).
                    out._is_param = True
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


class _Shadow:
    """Builds the shadow of a module tree (shared modules and tied tensors stay shared)."""

    def __init__(self, ctx: FakeModel) -> None:
        self.ctx = ctx
        self.memo = ctx.shadows

    def module(self, m: nn.Module) -> nn.Module:
        done = self.memo.get(id(m))
        if done is not None:
            return done
        if isinstance(m, torch.jit.ScriptModule):
            return self.scripted(m)
        clone: nn.Module = object.__new__(type(m))
        self.memo[id(m)] = clone
        attrs = dict(vars(m))
        for name, value in attrs.items():
            if name in ("_parameters", "_buffers"):
                attrs[name] = {k: self.tensor(v) for k, v in value.items()}
            elif name == "_modules":
                attrs[name] = {k: None if v is None else self.module(v) for k, v in value.items()}
            elif isinstance(value, dict | set | list | tuple) and not hasattr(value, "_fields"):
                # hook dicts, the non-persistent buffer set, a user's plain list of layers or cache:
                # the shadow's own copies, so nothing done to them reaches the served model
                attrs[name] = self.container(value)
            elif isinstance(value, torch.Tensor):
                attrs[name] = self.tensor(value)
            elif isinstance(value, nn.Module):
                attrs[name] = self.module(value)
        clone.__dict__.update(attrs)
        return clone

    def scripted(self, m: torch.jit.ScriptModule) -> nn.Module:
        """A TorchScript module runs C++ code on the tensors its C++ object holds, which a shadow
        cannot swap for fakes: writes like a scripted BatchNorm's running statistics would reach
        the served tensors. Its shadow is a real copy (its tensors become fakes as it runs them,
        under the fake mode), within a budget: TorchScript parts are usually small. (One on the
        meta device stays there: ScriptModules have no ``to_empty``, so the forward fails with a
        device mismatch, which is said.)"""
        size = sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])
        if size > MAX_SCRIPT_COPY_BYTES:
            served = self.ctx.module  # still the served model while its shadow is built
            path = next((p for p, sub in served.named_modules() if sub is m), "?")
            raise InvalidRequest(
                f"TorchScript module {path or '(model)'!r} holds {size / 2**20:,.0f} MiB: its tensors live in "
                f"C++, where fake tensors cannot replace them, and a copy to run it is only made up to "
                f"{MAX_SCRIPT_COPY_BYTES // 2**20} MiB",
                path=path,
            )
        clone: nn.Module = copy.deepcopy(m)
        self.memo[id(m)] = clone
        return clone

    def tensor(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or is_uninitialized(t):
            return t
        return self.ctx.fake(t)

    def container(self, value: Any, depth: int = 0) -> Any:
        def item(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                return self.tensor(v)
            if isinstance(v, nn.Module):
                return self.module(v)
            if depth < 2 and isinstance(v, list | tuple | dict) and not hasattr(v, "_fields"):
                return self.container(v, depth + 1)
            return v

        if not value and type(value) in _PLAIN:  # most are a module's empty hook dicts
            return type(value)()
        if isinstance(value, dict):
            out = value.copy()  # keeps the type (OrderedDict of hooks)
            for k, v in value.items():
                out[k] = item(v)
            return out
        if isinstance(value, set):
            return set(value)
        if isinstance(value, tuple):
            return tuple(item(v) for v in value)
        return [item(v) for v in value]


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
def fake_forward(
    module: nn.Module, *, device: torch.device | str | None = None, lock: AbstractContextManager[Any] | None = None
) -> Iterator[FakeModel]:
    """A fake shadow of ``module`` to run under ``ctx.mode``; see the module docstring.

    ``device``: where fake tensors live (whose kernels are counted); default: the model's
    device, the CPU for a model on meta. Uninitialized lazy parameters are left as they
    are: run a model with lazy modules on a real copy (``run.run_forward`` does). ``lock``
    (a served model's) is held while the shadow is built, not while it runs.
    """
    with isolated():
        with lock if lock is not None else contextlib.nullcontext():
            real_device = module_device(module)
            meta = real_device.type == "meta"
            target = torch.device(device) if device is not None else torch.device("cpu") if meta else real_device
            ctx = FakeModel(module, FakeTensorMode(allow_non_fake_inputs=True), target, meta)
            ctx.module = _Shadow(ctx).module(module)
        yield ctx
