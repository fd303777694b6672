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
from torchscope.inspect.graph.records import Capture, Kind
from torchscope.inspect.graph.view import View, ancestors, graph_view, method_note, module_box_id
from torchscope.inspect.overview import TensorTable

MAX_TENSOR_NAMES = 200  # parameter names listed on one node (the rest are counted)
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
) -> dict[str, Any]:
    """The graph at one module call, with the overlays' numbers (``table``: the weights' statistics)."""
    view = graph_view(capture, path, call, params=params)
    return view_json(capture, facts, view, table)


def view_json(capture: Capture, facts: ModuleFacts, view: View, table: TensorTable | None = None) -> dict[str, Any]:
    def stats(names: list[str]) -> dict[str, float | None] | None:
        return facts.stats(table, names)

    nodes = []
    for node in view.nodes:
        data = node.to_json()
        if node.kind == Kind.module:
            names = facts.subtree_params.get(node.path, []) + [
                n for n in facts.own_tensors.get(node.path, []) if facts.tensors.get(n) and facts.tensors[n].kind == "buffer"
            ]
            data["params"] = facts.params.get(node.path, 0)
            data["stats"] = stats(facts.subtree_params.get(node.path, []))
            sig = facts.signature.get(node.path)
            data["signature"] = sig
            data["repeats"] = facts.repeats.get(sig, 1) if sig else 1
            data["children"] = facts.children.get(node.path, 0)
        elif node.kind == Kind.op:
            names = list(node.tensors)
            weights = [n for n in names if n in facts.tensors and facts.tensors[n].kind == "param"]
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
        data["tensors"] = [facts.tensors[n].to_json() for n in names[:MAX_TENSOR_NAMES] if n in facts.tensors]
        if len(names) > MAX_TENSOR_NAMES:
            data["tensors_more"] = len(names) - MAX_TENSOR_NAMES
        nodes.append(data)
    return {
        "path": view.path,
        "call": view.call,
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


def search(capture: Capture, query: str) -> dict[str, Any]:
    """Modules (path or class) and ops (name or ATen target) whose name contains ``query``.

    Each match says which module calls to expand, outermost first (``reveal``), for its
    node (``id``) to be on screen.
    """
    q = query.strip().lower()[:MAX_QUERY]
    if not q:
        return {"query": query, "matches": [], "total": 0}
    around = ancestors(capture)
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
                    "reveal": [{"path": f.path, "call": f.call} for f in around.get(frame.key, ())],
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
                    "reveal": [{"path": f.path, "call": f.call} for f in atom.scope],
                })
    return {"query": query, "matches": matches, "total": total, "truncated": total > len(matches)}


__all__ = ["graph_answer", "graph_view", "search", "view_json"]
