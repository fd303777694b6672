"""Capture with forward hooks, for models ``torch.export`` cannot trace: a module-level graph.

Every registered module gets a pre-hook and a hook; the forward runs once (on fake tensors,
inside the caller's fake context). Which module's output feeds which module's input is
found by tensor identity. Between modules, plain tensor code runs too (``x + attn(x)``,
``h.view(...)``): a ``TorchFunctionMode`` follows each tensor back to the module outputs it
came from. An op that joins tensors from two or more sources (add, cat, matmul) becomes a
node; an op on one source (view, transpose, an activation function) is folded into the
edge and named in its ``via``. A module call with no module calls or joins inside is one
node (kind ``op``, label its class): its inside is not recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from torchscope.inspect.graph.flops import FlopMeter
from torchscope.inspect.graph.naming import Names, tensor_leaves
from torchscope.inspect.graph.outputs import named_tensors
from torchscope.inspect.graph.records import (
    Atom,
    Capture,
    Flow,
    Frame,
    Kind,
    Method,
    TensorMeta,
    first_line,
)

MAX_VIA = 4  # folded ops named on one edge; more are counted as "..."

# value id -> (ops folded on the way, the tensor as the consumer will see it)
Sources = dict[str, tuple[tuple[str, ...], TensorMeta]]


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    return str(name).strip("_") or str(name)


class ForwardFailed(Exception):
    """The forward raised; ``path`` is the innermost module call running then ("" for the model's own code)."""

    def __init__(self, path: str, cls: str, message: str) -> None:
        super().__init__(message)
        self.path, self.cls, self.message = path, cls, message


class _Recorder:
    def __init__(self, root: nn.Module, names: Names, meter: FlopMeter | None) -> None:
        self.root = root
        self.names = names
        self.meter = meter
        self.atoms: dict[str, Atom] = {}
        self.flows: list[Flow] = []
        self.frames: dict[str, Frame] = {}
        self.frame_flops: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        # (frame, atoms recorded before it started, its inputs' sources, flops before it started)
        self.stack: list[tuple[Frame, int, list[tuple[Sources, TensorMeta]], int]] = []
        self.sources: dict[int, Sources] = {}
        self.keep: list[torch.Tensor] = []  # tensors whose id() is a key of ``sources``: kept alive
        self.n_ops = 0

    # --- provenance of tensors
    def mark(self, t: torch.Tensor, sources: Sources) -> None:
        if id(t) not in self.sources:
            self.keep.append(t)
        self.sources[id(t)] = sources

    def sources_of(self, t: torch.Tensor) -> Sources:
        return self.sources.get(id(t), {})

    def _flops(self) -> int:
        return self.meter.total if self.meter is not None else 0

    @property
    def scope(self) -> tuple[Frame, ...]:
        return tuple(f for f, *_ in self.stack)

    def add_atom(self, atom: Atom, inputs: list[tuple[Sources, TensorMeta]], outs: list[torch.Tensor]) -> None:
        seen: set[str] = set()
        for sources, _meta in inputs:
            for value, (via, meta) in sources.items():
                if value in seen:
                    continue
                seen.add(value)
                src, _, index = value.rpartition(":")
                self.flows.append(Flow(src, int(index), atom.id, meta, via))
        atom.outs = tuple(TensorMeta.of(t) for t in outs)
        self.atoms[atom.id] = atom
        for i, t in enumerate(outs):
            self.mark(t, {f"{atom.id}:{i}": ((), TensorMeta.of(t))})

    # --- module hooks
    def pre_hook(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            call = self.calls.get(path, 0)
            self.calls[path] = call + 1
            frame = Frame(path, call, type(module).__name__)
            self.frames[frame.key] = frame
            inputs = [(self.sources_of(t), TensorMeta.of(t)) for _n, t in tensor_leaves(args, kwargs)]
            self.stack.append((frame, len(self.atoms), inputs, self._flops()))

        return hook

    def hook(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            if not self.stack or self.stack[-1][0].path != path:
                return  # the pre-hook did not run (an exception unwound past it)
            frame, n_atoms, inputs, flops_before = self.stack.pop()
            total = self._flops() - flops_before
            self.frame_flops[frame.key] = total
            if len(self.atoms) > n_atoms:
                return  # its inside was recorded (module calls, joins): its outputs are theirs
            tensors = tuple(
                self.names.tensors[id(t)][0]
                for _n, t in [*module.named_parameters(), *module.named_buffers()]
                if id(t) in self.names.tensors
            )
            atom = Atom(
                f"call:{frame.key}",
                Kind.op,
                frame.cls,
                f"{frame.cls}.forward",
                scope=(*self.scope, frame),
                flops=total,
                tensors=tensors,
            )
            self.add_atom(atom, inputs, [t for _n, t in named_tensors(output)])

        return hook

    # --- plain tensor code between modules
    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, flops: int) -> None:
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not outs:
            return
        merged: Sources = {}
        inputs: list[tuple[Sources, TensorMeta]] = []
        for t in pytree.tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor):
                found = self.sources_of(t)
                if found:
                    inputs.append(({v: (via, TensorMeta.of(t)) for v, (via, _m) in found.items()}, TensorMeta.of(t)))
                    merged.update(found)
        if not merged:
            return
        label = _func_name(func)
        if len(merged) == 1:  # one source: fold into the edge
            for t in outs:
                self.mark(t, {v: (_more(via, label), TensorMeta.of(t)) for v, (via, _m) in merged.items()})
            return
        self.n_ops += 1
        atom = Atom(f"op:{label}_{self.n_ops}", Kind.op, label, _qualified(func), scope=self.scope, flops=flops)
        self.add_atom(atom, inputs, outs)


def _more(via: tuple[str, ...], label: str) -> tuple[str, ...]:
    if len(via) >= MAX_VIA:
        return via if via[-1] == "..." else (*via, "...")
    return (*via, label)


def _qualified(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    qual = getattr(func, "__qualname__", None) or _func_name(func)
    if module.startswith("torch") or not module:
        return f"{module}.{qual}" if module else str(qual)
    return f"{module}.{qual}"


class _Lineage(TorchFunctionMode):
    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        before = self.recorder._flops()
        out = func(*args, **kwargs)
        self.recorder.op(func, args, kwargs, out, self.recorder._flops() - before)
        return out


def capture_hooks(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, flops: bool = True) -> Capture:
    """The module-level graph of ``module(*args, **kwargs)`` (run it on fake tensors: see the caller)."""
    start = time.perf_counter()
    names = Names.of(module)
    meter = FlopMeter() if flops else None
    rec = _Recorder(module, names, meter)
    for label, t in tensor_leaves(args, kwargs):
        atom = Atom(f"in:{label}", Kind.input, label, label)
        rec.add_atom(atom, [], [t])
    handles = []
    try:
        for path, m in module.named_modules():
            if path == "":
                continue  # the model itself is the view's root, not a call inside it
            if isinstance(m, torch.jit.ScriptModule):
                continue  # takes no hooks (TorchScript): its work shows inside the module around it
            handles.append(m.register_forward_pre_hook(rec.pre_hook(path), with_kwargs=True))
            handles.append(m.register_forward_hook(rec.hook(path), with_kwargs=True))
        if meter is not None:
            meter.__enter__()
        try:
            with _Lineage(rec):
                output = module(*args, **kwargs)
        except Exception as exc:
            frame = rec.stack[-1][0] if rec.stack else None
            raise ForwardFailed(frame.path if frame else "", frame.cls if frame else "", first_line(exc)) from exc
        finally:
            if meter is not None:
                meter.__exit__(None, None, None)
    finally:
        for h in handles:
            h.remove()
    for label, t in named_tensors(output):
        meta = TensorMeta.of(t)
        atom = Atom(f"out:{label}", Kind.output, label, label, outs=(meta,))
        rec.atoms[atom.id] = atom
        for value, (via, seen) in rec.sources_of(t).items():
            src, _, index = value.rpartition(":")
            rec.flows.append(Flow(src, int(index), atom.id, seen, via))
    capture = Capture(Method.hooks, "", rec.atoms, rec.flows, rec.frames, frame_flops=rec.frame_flops)
    capture.total_flops = meter.total if meter is not None else 0
    capture.seconds = time.perf_counter() - start
    return capture
