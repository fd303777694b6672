"""Views too wide to draw, cut into parts.

A module call with thousands of things directly inside it (a ``Sequential`` of 5,000 blocks,
a loop unrolled over 3,000 steps) cannot be laid out in a browser: ELK overflows its stack
on a chain of about 3,000 nodes, and takes seconds from about 1,000. So a view with more than
``MAX_NODES`` nodes (ports aside) is cut into *parts*: consecutive runs of the view's nodes,
in the order the forward made them, each drawn as one box that expands in place like a
module call.

* A run of at least ``MIN_RUN`` module calls with the same structure (``h.0`` … ``h.4998``)
  becomes one part ("0 … 4998", "4,999 x Sequential").
* What is still too many is cut into consecutive slices of ``SLICE`` nodes (more per slice
  when there would be more than ``SLICE`` slices).

A part is addressed by the range of indices it covers among the whole view's nodes
(``lo``-``hi``, ports excluded), whatever part it sits in: its own view is those nodes, with
ports for the tensors that cross its border, itself cut again when still too wide. Edges
into or out of a part are the tensors that cross its border, so the page joins a part's
view to its parent's by tensor, as it does for a module call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torchscope.inspect.errors import NotFound
from torchscope.inspect.graph.records import Kind
from torchscope.inspect.graph.view import Edge, Node, View, fill_box_shapes

MAX_NODES = 300  # nodes a view may have before it is cut into parts
MIN_RUN = 8  # same-structure module calls in a row that make a part of their own
SLICE = 100  # nodes per slice (more when there would be more than SLICE slices)

PORTS = (Kind.input, Kind.output)


@dataclass(frozen=True)
class Span:
    """Nodes ``lo`` to ``hi`` (exclusive) of a view's body, drawn as one box."""

    lo: int
    hi: int


Unit = int | Span  # one node of the body (its index), or a part


def body_of(view: View) -> list[Node]:
    """The view's nodes that parts are made of: all but its ports, in order."""
    return [n for n in view.nodes if n.kind not in PORTS]


def units(body: Sequence[Node], lo: int, hi: int, signature: Mapping[str, str | None]) -> list[Unit]:
    """How nodes ``lo``..``hi`` of ``body`` are drawn: each node, or parts when they are too many."""
    if hi - lo <= MAX_NODES:
        return list(range(lo, hi))
    out: list[Unit] = []
    i = lo
    while i < hi:
        j = i + 1
        sig = signature.get(body[i].path) if body[i].kind == Kind.module else None
        if sig is not None:
            while j < hi and body[j].kind == Kind.module and signature.get(body[j].path) == sig:
                j += 1
        if j - i >= MIN_RUN and not (i == lo and j == hi):  # a run; a range that is one run is sliced
            out.append(Span(i, j))
        else:
            out.extend(range(i, j))
        i = j
    if len(out) <= MAX_NODES:
        return out
    size = max(SLICE, -(-len(out) // SLICE))
    sliced: list[Unit] = []
    for k in range(0, len(out), size):
        chunk = out[k : k + size]
        if len(chunk) == 1:
            sliced.append(chunk[0])
        else:
            first, last = chunk[0], chunk[-1]
            sliced.append(Span(first.lo if isinstance(first, Span) else first, last.hi if isinstance(last, Span) else last + 1))
    return sliced


def part_key(view: View, span: Span) -> str:
    return f"{view.path}#{view.call}/{span.lo}-{span.hi}"


def part_node(view: View, body: Sequence[Node], span: Span) -> Node:
    members = tuple(body[span.lo : span.hi])
    first, last = members[0], members[-1]
    modules = [m for m in members if m.kind == Kind.module]
    if len(modules) == len(members):
        label = f"{first.label} … {last.label}"
    else:
        label = f"{len(members):,} nodes: {first.label} … {last.label}"
    kinds = Counter(m.cls if m.kind == Kind.module else m.label for m in members)
    common = kinds.most_common(3)
    if len(kinds) == 1:
        summary = f"{len(members):,} \u00d7 {common[0][0]}"
    else:
        summary = ", ".join(f"{c:,} {name}" for name, c in common) + (", …" if len(kinds) > 3 else "")
    return Node(
        f"m:{part_key(view, span)}",
        Kind.module,
        label,
        path=view.path,
        cls=summary,
        call=view.call,
        flops=sum(m.flops for m in members),
        expandable=True,
        span=(span.lo, span.hi),
        members=members,
    )


def cut(view: View, signature: Mapping[str, str | None], span: tuple[int, int] | None = None) -> View:
    """``view`` (or its nodes ``span``) as drawn: at most about ``MAX_NODES`` nodes, parts for the rest."""
    body = body_of(view)
    if span is None:
        lo, hi = 0, len(body)
        ports = [n for n in view.nodes if n.kind in PORTS]
    else:
        lo, hi = span
        if not (0 <= lo < hi <= len(body)) or len(body) <= MAX_NODES:
            raise NotFound(
                f"no part {lo}-{hi} in the graph of {view.path or 'the model'!r}: it has {len(body)} node(s)"
                + ("" if len(body) > MAX_NODES else ", drawn without parts"),
                path=view.path,
            )
        ports = []
    plan = units(body, lo, hi, signature)
    if span is None and all(isinstance(u, int) for u in plan):
        return view
    # Where each node of the whole view is drawn: its own id, its part's box, or outside (None).
    shown: dict[str, str | None] = {n.id: None for n in body}
    nodes: list[Node] = []
    for u in plan:
        if isinstance(u, Span):
            box = part_node(view, body, u)
            nodes.append(box)
            for m in body[u.lo : u.hi]:
                shown[m.id] = box.id
        else:
            nodes.append(body[u])
            shown[body[u].id] = body[u].id
    for port in ports:
        shown[port.id] = port.id
    edges: dict[tuple[str, str, str], Edge] = {}
    ins: dict[str, Node] = {}
    outs: dict[str, Node] = {}
    labels = {n.id: n.label for n in view.nodes if n.kind == Kind.input}
    key = part_key(view, Span(lo, hi)) if span is not None else ""
    for e in view.edges:
        s, t = shown.get(e.source), shown.get(e.target)
        if s is not None and t is not None:
            if s != t:
                edges.setdefault((s, t, e.value), Edge(s, t, e.meta, e.value, e.via))
        elif t is not None:  # enters this part from outside it: an input port
            if e.value not in ins:
                label = labels.get(e.source, f"input {len(ins)}")
                ins[e.value] = Node(f"in:{key}:{e.value}", Kind.input, label, value=e.value, shapes_out=[e.meta])
            src = ins[e.value].id
            edges.setdefault((src, t, e.value), Edge(src, t, e.meta, e.value, e.via))
        elif s is not None:  # leaves this part: an output port
            if e.value not in outs:
                label = f"output {len(outs)}"
                outs[e.value] = Node(f"out:{key}:{e.value}", Kind.output, label, value=e.value, shapes_in=[e.meta])
            dst = outs[e.value].id
            edges.setdefault((s, dst, e.value), Edge(s, dst, e.meta, e.value, e.via))
    # a part's shapes in and out: the distinct tensors crossing its border, as for a module box
    fill_box_shapes({n.id: n for n in nodes if n.span is not None}, edges.values())
    ordered = ports[: sum(1 for p in ports if p.kind == Kind.input)] + list(ins.values()) + nodes
    ordered += [p for p in ports if p.kind == Kind.output] + list(outs.values())
    return View(
        path=view.path, call=view.call, cls=view.cls, nodes=ordered, edges=list(edges.values()), calls=view.calls, span=span
    )


def spans_to(view: View, signature: Mapping[str, str | None], node_id: str) -> list[tuple[int, int]]:
    """The parts to open, outermost first, for node ``node_id`` of ``view`` to be drawn."""
    body = body_of(view)
    index = next((i for i, n in enumerate(body) if n.id == node_id), None)
    out: list[tuple[int, int]] = []
    lo, hi = 0, len(body)
    while index is not None:
        inner = next((u for u in units(body, lo, hi, signature) if isinstance(u, Span) and u.lo <= index < u.hi), None)
        if inner is None:
            break
        out.append((inner.lo, inner.hi))
        lo, hi = inner.lo, inner.hi
    return out
