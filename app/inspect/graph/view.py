"""The hierarchical graph: the flat capture folded at one module call.

At a module call ``F`` (``path``, ``call``; the model itself for ``""``) the view shows:

* one box (kind ``module``) per module call made directly inside ``F``, whatever ops run
  inside it (expanding a box asks for the view at that call);
* the ops ``F`` runs itself (the ``x + attn(x)`` of a residual block);
* ``F``'s inputs and outputs (ports, kind ``input``/``output``, one per distinct tensor;
  for the model itself, the model's inputs and outputs);
* with ``params``, the parameters/buffers its own ops read.

Edges are tensors (``shape``, ``dtype``). Each edge and port carries ``value``, the id of
the tensor in the flat capture: the same tensor has the same ``value`` at every level,
which is how the page replaces a box by its own view in place (the edges into a box are
the edges out of its input ports with the same ``value``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchscope.inspect.errors import NotFound
from torchscope.inspect.graph.records import Atom, Capture, Flow, Frame, Kind, Method, TensorMeta


@dataclass
class Node:
    id: str
    kind: Kind
    label: str
    path: str = ""
    cls: str = ""
    target: str = ""
    call: int | None = None
    shapes_in: list[TensorMeta] = field(default_factory=list)
    shapes_out: list[TensorMeta] = field(default_factory=list)
    flops: int = 0
    tensors: tuple[str, ...] = ()
    value: str | None = None  # ports: the tensor they stand for
    expandable: bool = False
    span: tuple[int, int] | None = None  # a part (parts.py): the nodes it stands for, lo..hi
    members: tuple[Node, ...] = ()  # a part's nodes

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "label": self.label,
            "path": self.path,
            "class": self.cls,
            "target": self.target,
            "shapes_in": [m.to_json() for m in self.shapes_in],
            "shapes_out": [m.to_json() for m in self.shapes_out],
            "flops": self.flops,
            "output_bytes": sum(m.nbytes for m in self.shapes_out),
            "tensors": list(self.tensors),
        }
        if self.call is not None:
            out["call"] = self.call
        if self.value is not None:
            out["value"] = self.value
        if self.kind == Kind.module:
            out["expandable"] = self.expandable
        if self.span is not None:
            out["part"] = {
                "lo": self.span[0],
                "hi": self.span[1],
                "count": len(self.members),
                "modules": sum(1 for m in self.members if m.kind == Kind.module),
            }
        return out


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    meta: TensorMeta
    value: str
    via: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "target": self.target,
            "shape": list(self.meta.shape),
            "dtype": self.meta.dtype,
            "value": self.value,
        }
        if self.via:
            out["via"] = list(self.via)
        return out


@dataclass
class View:
    path: str
    call: int
    cls: str
    nodes: list[Node]
    edges: list[Edge]
    calls: int  # how many times this module is called in the forward pass
    span: tuple[int, int] | None = None  # a part of the view at this call (parts.py)


def frame_of(capture: Capture, path: str, call: int) -> Frame | None:
    """The module call to show (``None``: the model itself); NotFound for paths never called."""
    if path == "":
        return None
    frame = capture.frames.get(f"{path}#{call}")
    if frame is None:
        calls = sum(1 for f in capture.frames.values() if f.path == path)
        if calls:
            raise NotFound(f"module {path!r} is called {calls} time(s); call {call} does not exist", path=path)
        raise NotFound(
            f"module {path!r} does not appear in the captured graph: no such module, or no op ran inside it",
            path=path,
        )
    return frame


def module_box_id(frame: Frame) -> str:
    return f"m:{frame.key}"


def relative(path: str, parent: str) -> str:
    return path[len(parent) + 1 :] if parent and path.startswith(parent + ".") else path


def graph_view(capture: Capture, path: str = "", call: int = 0, *, params: bool = False) -> View:
    """The graph inside module call ``path`` / ``call`` (see the module docstring)."""
    frame = frame_of(capture, path, call)
    atoms = capture.atoms
    # Frames with something inside them (module calls or ops): those can be expanded.
    has_inside: set[str] = set()
    for atom in atoms.values():
        for i, f in enumerate(atom.scope):
            if i + 1 < len(atom.scope) or not atom.id.startswith("call:"):
                has_inside.add(f.key)

    def place(atom: Atom) -> str | None:
        """Where ``atom`` shows in this view: its own id, the box of the call it is in, or None (outside)."""
        scope = atom.scope
        if frame is None:
            if atom.kind in (Kind.param, Kind.buffer):
                return None
            return module_box_id(scope[0]) if scope else atom.id
        try:
            i = scope.index(frame)
        except ValueError:
            return None
        return module_box_id(scope[i + 1]) if i + 1 < len(scope) else atom.id

    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], Edge] = {}
    ports_in: dict[str, Node] = {}
    ports_out: dict[str, Node] = {}
    placed: dict[str, str | None] = {}

    def where(atom_id: str) -> str | None:
        if atom_id not in placed:
            placed[atom_id] = place(atoms[atom_id])
        return placed[atom_id]

    def node_for(atom_id: str, rep: str) -> Node:
        node = nodes.get(rep)
        if node is None:
            atom = atoms[atom_id]
            if rep != atom_id:  # a box: the call right inside this view
                scope = atom.scope
                child = scope[scope.index(frame) + 1] if frame is not None else scope[0]
                node = Node(
                    rep,
                    Kind.module,
                    relative(child.path, path),
                    path=child.path,
                    cls=child.cls,
                    call=child.call,
                    flops=capture.frame_flops.get(child.key, 0),
                    expandable=child.key in has_inside,
                )
            else:
                node = Node(
                    atom.id,
                    atom.kind,
                    atom.label,
                    path=path if atom.kind == Kind.op else "",
                    target=atom.target,
                    shapes_out=list(atom.outs),
                    flops=atom.flops,
                    tensors=atom.tensors,
                )
                if atom.id.startswith("call:") and atom.scope:
                    node.cls = atom.scope[-1].cls
            nodes[rep] = node
        return node

    def add_edge(source: str, target: str, flow: Flow) -> None:
        key = (source, target, flow.value)
        if key not in edges:
            edges[key] = Edge(source, target, flow.meta, flow.value, flow.via)

    for flow in capture.flows:
        src, dst = atoms[flow.src], atoms[flow.dst]
        rd = where(flow.dst)
        if src.kind in (Kind.param, Kind.buffer):
            if rd is not None and rd == dst.id:
                node_for(flow.dst, rd).shapes_in.append(flow.meta)
                if params:
                    node_for(flow.src, flow.src)
                    add_edge(flow.src, rd, flow)
            continue
        if rd is not None and rd == dst.id:
            node_for(flow.dst, rd).shapes_in.append(flow.meta)
        rs = where(flow.src)
        if rs is not None and rd is not None:
            if rs != rd:
                node_for(flow.src, rs)
                node_for(flow.dst, rd)
                add_edge(rs, rd, flow)
        elif rd is not None:  # comes from outside this module call: an input port
            port = ports_in.get(flow.value)
            if port is None:
                label = src.label if src.kind == Kind.input else f"input {len(ports_in)}"
                port = ports_in[flow.value] = Node(
                    f"in:{frame.key if frame else ''}:{flow.value}", Kind.input, label, value=flow.value
                )
                port.shapes_out.append(flow.meta)
            node_for(flow.dst, rd)
            add_edge(port.id, rd, flow)
        elif rs is not None:  # goes outside: an output port
            port = ports_out.get(flow.value)
            if port is None:
                label = dst.label if dst.kind == Kind.output else f"output {len(ports_out)}"
                port = ports_out[flow.value] = Node(
                    f"out:{frame.key if frame else ''}:{flow.value}", Kind.output, label, value=flow.value
                )
                port.shapes_in.append(flow.meta)
            node_for(flow.src, rs)
            add_edge(rs, port.id, flow)

    # Atoms with no edge at this level (an op whose result is unused) still show.
    for atom in atoms.values():
        if atom.kind in (Kind.op, Kind.input, Kind.output):
            rep = where(atom.id)
            if rep is not None:
                node_for(atom.id, rep)

    fill_box_shapes(nodes, edges.values())
    ordered = list(ports_in.values()) + list(nodes.values()) + list(ports_out.values())
    return View(
        path=path,
        call=call,
        cls=frame.cls if frame is not None else "",
        nodes=ordered,
        edges=list(edges.values()),
        calls=sum(1 for f in capture.frames.values() if f.path == path) if path else 1,
    )


def fill_box_shapes(nodes: dict[str, Node], edges: Any) -> None:
    """A box's shapes in/out: the distinct tensors on its edges, in order."""
    seen_in: dict[str, set[str]] = {}
    seen_out: dict[str, set[str]] = {}
    for e in edges:
        target, source = nodes.get(e.target), nodes.get(e.source)
        if target is not None and target.kind == Kind.module and e.value not in seen_in.setdefault(e.target, set()):
            seen_in[e.target].add(e.value)
            target.shapes_in.append(e.meta)
        if source is not None and source.kind == Kind.module and e.value not in seen_out.setdefault(e.source, set()):
            seen_out[e.source].add(e.value)
            source.shapes_out.append(e.meta)


def ancestors(capture: Capture) -> dict[str, tuple[Frame, ...]]:
    """Frame key -> the module calls around it, outermost first (what to expand to reveal it)."""
    out: dict[str, tuple[Frame, ...]] = {}
    for atom in capture.atoms.values():
        for i, f in enumerate(atom.scope):
            out.setdefault(f.key, atom.scope[:i])
    return out


def method_note(capture: Capture) -> str:
    if capture.method == Method.export:
        return "every ATen op, traced by torch.export.export(strict=False) on fake tensors"
    return (
        "module-level graph recorded with forward hooks on fake tensors: which module's output feeds which "
        "module's input; ops that join tensors (add, cat, matmul) are shown, single-input ops are folded into edges"
    )
