"""Capture with ``torch.export.export(strict=False)``: every ATen op, its module calls, shapes, dtypes.

Non-strict export runs ``forward`` as Python on fake tensors (its own FakeTensorMode,
parameters swapped for fakes while it traces), so the weights are never read nor written.
Each op node's ``meta["nn_module_stack"]`` lists the module calls around it, keyed per
call (``fc`` then ``fc@1`` for a module called twice), and ``meta["val"]`` is its fake
output. A failing export raises ``ExportFailed`` with torch's first line; the caller falls
back to hooks (``capture.py``).
"""

from __future__ import annotations

import contextlib
import logging
import operator
import time
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx, nn
from torch._guards import detect_fake_mode
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind, TensorArgument

from torchscope.inspect.graph.flops import FlopMeter
from torchscope.inspect.graph.naming import Names, input_names
from torchscope.inspect.graph.outputs import OutputsOf, strip_prefix
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


class ExportFailed(Exception):
    """torch.export could not trace the model; ``str()`` is torch's reason, one line."""


@contextlib.contextmanager
def _no_stack_traces() -> Iterator[None]:
    """The graph never shows ``node.meta["stack_trace"]``: not recording it saves a fifth of an export."""
    was = torch.fx.config.do_not_emit_stack_traces
    torch.fx.config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        torch.fx.config.do_not_emit_stack_traces = was


def export_program(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ExportedProgram, list[str]]:
    """The exported program of ``OutputsOf(module)`` and its output names."""
    wrapper = OutputsOf(module)
    names = wrapper.names  # filled while tracing (see OutputsOf.forward)
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export", "torch._dynamo", "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:  # a failed export is our answer (fallback + reason), not log noise
            lg.setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), _no_stack_traces():
            warnings.simplefilter("ignore")
            ep = torch.export.export(wrapper, args, kwargs, strict=False)
    except Exception as exc:
        raise ExportFailed(first_line(exc)) from exc
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    return ep, list(names)


def _metas(val: Any) -> tuple[TensorMeta | None, ...]:
    if isinstance(val, torch.Tensor):
        return (TensorMeta.of(val),)
    if isinstance(val, list | tuple):
        return tuple(TensorMeta.of(v) if isinstance(v, torch.Tensor) else None for v in val)
    return ()


def _op_label(target: Any) -> str:
    name = getattr(target, "_opname", None) or getattr(target, "__name__", None) or str(target)
    return str(name)


class _Scopes:
    """nn_module_stack entries -> Frames with call indices counted per path, in call order."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.by_key: dict[str, Frame] = {}
        self.calls: dict[str, int] = {}
        self.frames: dict[str, Frame] = {}

    def scope(self, stack: dict[str, tuple[str, Any]] | None) -> tuple[Frame, ...]:
        out: list[Frame] = []
        for key, (raw_path, _cls) in (stack or {}).items():
            frame = self.by_key.get(key)
            if frame is None and key not in self.by_key:
                stripped = strip_prefix(raw_path)
                path = self.names.module_path(stripped) if stripped else None
                if path:
                    call = self.calls.get(path, 0)
                    self.calls[path] = call + 1
                    frame = Frame(path, call, self.names.classes[path])
                    self.frames[frame.key] = frame
                self.by_key[key] = frame  # type: ignore[assignment]  # None: not a registered module
            if frame is not None and (not out or out[-1] != frame):
                out.append(frame)
        return tuple(out)


def capture_export(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, flops: bool = True) -> Capture:
    """The op-level graph of ``module(*args, **kwargs)``; raises ExportFailed."""
    start = time.perf_counter()
    ep, out_names = export_program(module, args, kwargs)
    names = Names.of(module)
    graph: fx.Graph = ep.graph
    sig = ep.graph_signature
    scopes = _Scopes(names)
    atoms: dict[str, Atom] = {}
    flows: list[Flow] = []
    produced: dict[fx.Node, tuple[str, int]] = {}  # fx node -> (atom id, output index)

    user_inputs = [(n, v) for n, v in input_names(args, kwargs)]
    specs = {s.arg.name: s for s in sig.input_specs if isinstance(s.arg, TensorArgument)}
    user_specs = [s for s in sig.input_specs if s.kind == InputKind.USER_INPUT]
    user_label = {
        s.arg.name: label
        for s, (label, _v) in zip(user_specs, user_inputs, strict=False)
        if isinstance(s.arg, TensorArgument)
    }

    for node in graph.nodes:
        if node.op != "placeholder":
            break
        spec = specs.get(node.name)
        val = node.meta.get("val")
        if spec is None or not isinstance(val, torch.Tensor):
            continue
        if spec.kind == InputKind.USER_INPUT:
            label = user_label.get(node.name, node.name)
            atom = Atom(f"in:{label}", Kind.input, label, label, outs=(TensorMeta.of(val),))
        else:
            raw = strip_prefix(spec.target or "") or (spec.target or node.name)
            named = names.tensor_name(raw)
            name, kind = named if named is not None else (raw, Kind.buffer)
            label = name if named is not None else f"{raw} (plain tensor)"
            atom = atoms.get(f"t:{name}") or Atom(f"t:{name}", kind, label, name, outs=(TensorMeta.of(val),))
        atoms[atom.id] = atom
        produced[node] = (atom.id, 0)

    fake_mode = detect_fake_mode([n.meta.get("val") for n in graph.nodes if n.op == "placeholder"])
    meter = FlopMeter() if flops and fake_mode is not None else None
    if meter is not None:
        meter.__enter__()
    try:
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            if node.target is operator.getitem and node.args[0] in produced:
                src, _ = produced[node.args[0]]
                produced[node] = (src, int(node.args[1]))
                continue
            val = node.meta.get("val")
            metas = _metas(val)
            if not any(metas) and not node.users:
                continue  # asserts and other ops with nothing to show
            atom = Atom(
                f"op:{node.name}",
                Kind.op,
                _op_label(node.target),
                str(node.target),
                scope=scopes.scope(node.meta.get("nn_module_stack")),
                outs=tuple(m for m in metas if m is not None),
            )
            seen: set[tuple[str, int]] = set()
            for inp in node.all_input_nodes:
                came = produced.get(inp)
                inval = inp.meta.get("val")
                if came is None or came in seen or not isinstance(inval, torch.Tensor):
                    continue
                seen.add(came)
                flows.append(Flow(came[0], came[1], atom.id, TensorMeta.of(inval)))
                if atoms[came[0]].kind in (Kind.param, Kind.buffer):
                    atom.tensors += (atoms[came[0]].target,)
            if meter is not None and fake_mode is not None and not _mutates(node) and meter.may_count(node.target):
                atom.flops = _rerun_flops(meter, fake_mode, node)
            atoms[atom.id] = atom
            produced[node] = (atom.id, 0)
    finally:
        if meter is not None:
            meter.__exit__(None, None, None)

    _add_outputs(graph, sig, out_names, produced, atoms, flows)
    capture = Capture(Method.export, "", atoms, flows, scopes.frames)
    capture.total_flops = sum(a.flops for a in atoms.values())
    for atom in atoms.values():  # a call's FLOPs: every op inside it, at any depth
        for f in atom.scope:
            capture.frame_flops[f.key] = capture.frame_flops.get(f.key, 0) + atom.flops
    capture.seconds = time.perf_counter() - start
    return capture


def _mutates(node: fx.Node) -> bool:
    schema = getattr(node.target, "_schema", None)
    return bool(schema is not None and schema.is_mutable)


def _rerun_flops(meter: FlopMeter, fake_mode: Any, node: fx.Node) -> int:
    def val(a: Any) -> Any:
        return a.meta.get("val") if isinstance(a, fx.Node) else a

    args = fx.node.map_aggregate(node.args, val)
    kwargs = fx.node.map_aggregate(node.kwargs, val)
    target: Any = node.target

    def run() -> None:
        with fake_mode:
            target(*args, **kwargs)

    return meter.count(run)


def _add_outputs(
    graph: fx.Graph,
    sig: Any,
    out_names: list[str],
    produced: dict[fx.Node, tuple[str, int]],
    atoms: dict[str, Atom],
    flows: list[Flow],
) -> None:
    output = next(n for n in reversed(graph.nodes) if n.op == "output")
    values = list(output.args[0]) if isinstance(output.args[0], list | tuple) else [output.args[0]]
    user = [i for i, s in enumerate(sig.output_specs) if s.kind == OutputKind.USER_OUTPUT]
    for n_user, i in enumerate(user):
        node = values[i] if i < len(values) else None
        if not isinstance(node, fx.Node) or node not in produced:
            continue
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        label = out_names[n_user] if n_user < len(out_names) else f"output {n_user}"
        meta = TensorMeta.of(val)
        atom = Atom(f"out:{label}", Kind.output, label, label, outs=(meta,))
        atoms[atom.id] = atom
        src, index = produced[node]
        flows.append(Flow(src, index, atom.id, meta))
