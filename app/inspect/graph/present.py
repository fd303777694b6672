"""The graph API's answer: a view (``view.py``) with the overlays' numbers, and search.

HTTP contract (``GET /api/models/{id}/graph?path=P``)::

    {"path", "call", "calls", "class", "capture": "export"|"hooks", "reason", "note",
     "nodes": [{"id", "kind": "module"|"op"|"input"|"output"|"param"|"buffer", "label",
                "path", "class", "target", "shapes_in", "shapes_out", "params", "flops",
                "output_bytes", "stats", "tensors", ...}],
     "edges": [{"source", "target", "shape", "dtype", "value"}], "totals": {...}}

Module nodes also carry ``call``, ``expandable``, ``signature`` and ``repeats`` (modules
in the model with the same structure); ports carry ``value``. ``stats`` are the weight
statistics of the parameters a node holds (module) or reads (op), ``null`` without values.
"""

from __future__ import annotations

from typing import Any

from torchscope.inspect.graph.facts import ModuleFacts
from torchscope.inspect.graph.parts import MAX_NODES, cut, spans_to
from torchscope.inspect.graph.records import Capture, Frame, Kind
from torchscope.inspect.graph.view import (
    Node,
    View,
    ancestors,
    graph_view,
    method_note,
    module_box_id,
)
from torchscope.inspect.overview import TensorTable

MAX_TENSOR_NAMES = 200  # parameter names listed on one node (the rest are counted)
MAX_PART_TENSOR_NAMES = 20  # on a part (parts.py), which may hold thousands
MAX_MATCHES = 100
MAX_QUERY = 200


def graph_answer(
    capture: Capture,
    facts: ModuleFacts,
    path: str = "",
    call: int = 0,
    *,
    params: bool = False,
    table: TensorTable | None = None,
    span: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The graph at one module call (or one part of it, ``span``: see parts.py), with the
    overlays' numbers (``table``: the weights' statistics)."""
    view = cut(graph_view(capture, path, call, params=params), facts.signature, span)
    return view_json(capture, facts, view, table)


def module_tensors(facts: ModuleFacts, node: Node) -> tuple[list[str], list[str]]:
    """The tensors a module box holds (parameters and buffers) and its parameters alone."""
    params = facts.subtree_params.get(node.path, [])
    buffers = [n for n in facts.own_tensors.get(node.path, []) if facts.tensors.get(n) and facts.tensors[n].kind == "buffer"]
    return params + buffers, params


def op_params(facts: ModuleFacts, node: Node) -> list[str]:
    return [n for n in node.tensors if n in facts.tensors and facts.tensors[n].kind == "param"]


def view_json(capture: Capture, facts: ModuleFacts, view: View, table: TensorTable | None = None) -> dict[str, Any]:
    def stats(names: list[str]) -> dict[str, float | None] | None:
        return facts.stats(table, names)

    nodes = []
    for node in view.nodes:
        data = node.to_json()
        if node.span is not None:  # a part: what its nodes hold, counted once
            names, weights = [], []
            for m in node.members:
                held, own = module_tensors(facts, m) if m.kind == Kind.module else (list(m.tensors), op_params(facts, m))
                names += held
                weights += own
            weights = list(dict.fromkeys(facts.tensors[n].name for n in weights))  # tied weights once
            data["params"] = sum(facts.tensors[n].numel for n in weights)
            data["stats"] = stats(weights)
            data["children"] = len(node.members)
            sigs = {facts.signature.get(m.path) for m in node.members if m.kind == Kind.module}
            sig = sigs.pop() if len(sigs) == 1 and len(node.members) == data["part"]["modules"] else None
            data["signature"] = sig
            data["repeats"] = facts.repeats.get(sig, 1) if sig else 1
            names = list(dict.fromkeys(names))
        elif node.kind == Kind.module:
            names, weights = module_tensors(facts, node)
            data["params"] = facts.params.get(node.path, 0)
            data["stats"] = stats(weights)
            sig = facts.signature.get(node.path)
            data["signature"] = sig
            data["repeats"] = facts.repeats.get(sig, 1) if sig else 1
            data["children"] = facts.children.get(node.path, 0)
        elif node.kind == Kind.op:
            names = list(node.tensors)
            weights = op_params(facts, node)
            data["params"] = sum(facts.tensors[n].numel for n in weights)
            data["stats"] = stats(weights)
        elif node.kind in (Kind.param, Kind.buffer):
            names = [node.target]
            fact = facts.tensors.get(node.target)
            data["params"] = fact.numel if fact is not None and fact.kind == "param" else 0
            data["stats"] = stats([node.target]) if fact is not None and fact.kind == "param" else None
        else:
            names = []
            data["params"] = 0
            data["stats"] = None
        cap = MAX_PART_TENSOR_NAMES if node.span is not None else MAX_TENSOR_NAMES
        data["tensors"] = [facts.tensors[n].to_json() for n in names[:cap] if n in facts.tensors]
        if len(names) > cap:
            data["tensors_more"] = len(names) - cap
        nodes.append(data)
    return {
        "path": view.path,
        "call": view.call,
        "part": list(view.span) if view.span is not None else None,
        "calls": view.calls,
        "class": view.cls or facts.classes.get(view.path, ""),
        "capture": str(capture.method),
        "reason": capture.reason,
        "note": method_note(capture),
        "nodes": nodes,
        "edges": [e.to_json() for e in view.edges],
        "totals": {
            "flops": capture.total_flops,
            "ops": sum(1 for a in capture.atoms.values() if a.kind == Kind.op),
            "module_calls": len(capture.frames),
            "seconds": round(capture.seconds, 3),
        },
        "stats_available": bool(table is not None and table.summarised.any()),
        "warnings": list(capture.warnings),
    }


def search(capture: Capture, query: str, facts: ModuleFacts) -> dict[str, Any]:
    """Modules (path or class) and ops (name or ATen target) whose name contains ``query``.

    Each match says which module calls to expand, outermost first (``reveal``), for its
    node (``id``) to be on screen; in a view cut into parts (parts.py), the parts to open too.
    """
    q = query.strip().lower()[:MAX_QUERY]
    if not q:
        return {"query": query, "matches": [], "total": 0}
    around = ancestors(capture)
    reveal = Revealer(capture, facts, around)
    matches: list[dict[str, Any]] = []
    total = 0
    for frame in capture.frames.values():
        if q in frame.path.lower() or q in frame.cls.lower():
            total += 1
            if len(matches) < MAX_MATCHES:
                matches.append({
                    "kind": "module",
                    "id": module_box_id(frame),
                    "label": frame.path,
                    "path": frame.path,
                    "call": frame.call,
                    "class": frame.cls,
                    "reveal": reveal(around.get(frame.key, ()), module_box_id(frame)),
                })
    for atom in capture.atoms.values():
        if atom.kind != Kind.op or atom.id.startswith("call:"):
            continue
        if q in atom.label.lower() or q in atom.target.lower():
            total += 1
            if len(matches) < MAX_MATCHES:
                owner = atom.scope[-1] if atom.scope else None
                matches.append({
                    "kind": "op",
                    "id": atom.id,
                    "label": atom.label,
                    "path": owner.path if owner else "",
                    "call": owner.call if owner else 0,
                    "class": "",
                    "target": atom.target,
                    "reveal": reveal(atom.scope, atom.id),
                })
    return {"query": query, "matches": matches, "total": total, "truncated": total > len(matches)}


class Revealer:
    """What to open for a node to be drawn: the module calls around it and, in views cut into
    parts, the parts it sits in (``{"path", "call", "part": [lo, hi]}``)."""

    def __init__(self, capture: Capture, facts: ModuleFacts, around: dict[str, tuple[Frame, ...]]) -> None:
        self.capture, self.facts = capture, facts
        self.views: dict[str, View] = {}
        # Things directly inside each module call (frame key; "" for the model): only views with
        # many of them can be cut, and only those are built here.
        inside: dict[str, int] = {}
        for outer in around.values():
            parent = outer[-1].key if outer else ""
            inside[parent] = inside.get(parent, 0) + 1
        for atom in capture.atoms.values():
            if atom.kind == Kind.op and not atom.id.startswith("call:"):
                parent = atom.scope[-1].key if atom.scope else ""
                inside[parent] = inside.get(parent, 0) + 1
        self.crowded = {k for k, n in inside.items() if n > MAX_NODES // 2}

    def __call__(self, frames: tuple[Frame, ...], node_id: str) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        chain: list[Frame | None] = [None, *frames]
        for i, frame in enumerate(chain):
            path, call = (frame.path, frame.call) if frame is not None else ("", 0)
            if frame is not None:
                steps.append({"path": path, "call": call})
            key = frame.key if frame is not None else ""
            if key in self.crowded:
                if key not in self.views:
                    self.views[key] = graph_view(self.capture, path, call)
                nxt = chain[i + 1] if i + 1 < len(chain) else None
                element = module_box_id(nxt) if nxt is not None else node_id
                for lo, hi in spans_to(self.views[key], self.facts.signature, element):
                    steps.append({"path": path, "call": call, "part": [lo, hi]})
        return steps


__all__ = ["graph_answer", "graph_view", "search", "view_json"]
