"""The per-call table as text (torchinfo-like, for the terminal) or Markdown (to paste into an issue)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from torchscope.inspect.forward.spec import parse_inputs
from torchscope.inspect.forward.totals import EXPLAIN
from torchscope.units import human_bytes


class TableFormat(StrEnum):
    text = "text"
    markdown = "markdown"


def si(n: int | float) -> str:
    """``3184581017600`` -> ``3.18T`` (SI prefixes, 3 significant digits)."""
    value = float(n)
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(float(f"{value:.3g}")) < 1000 or unit == "P":  # 999,700 is 1M, not 1e+03K
            return f"{round(value)}" if unit == "" else f"{value:.3g}{unit}"
        value /= 1000
    return str(n)


def short(desc: Any, limit: int = 60) -> str:
    """A value description in one cell: ``[1, 16, 768]``, ``(tuple: [1, 8], [1, 8])``, ``{logits: [1, 5]}``."""
    text = _short(desc, 0)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(desc: Any, depth: int) -> str:
    if desc is None:
        return "None"
    if not isinstance(desc, dict):
        return str(desc)
    if "shape" in desc:
        dt = "" if desc.get("dtype") == "float32" else " " + str(desc.get("dtype"))
        return "[" + ", ".join(str(s) for s in desc["shape"]) + "]" + dt
    if "repr" in desc:
        return str(desc["repr"]) if desc.get("type") in ("int", "float", "bool", "str") else str(desc["type"])
    items = desc.get("items")
    if depth >= 2:
        return str(desc.get("type"))
    more = ", …" if desc.get("more") else ""
    if isinstance(items, dict):
        inner = ", ".join(f"{k}: {_short(v, depth + 1)}" for k, v in items.items() if v is not None)
        return f"{desc.get('type')}{{{inner}{more}}}"
    if isinstance(items, list):
        if len(items) == 1 and depth == 0:
            return _short(items[0], depth + 1)
        return "(" + ", ".join(_short(v, depth + 1) for v in items) + more + ")"
    return str(desc.get("type"))


def inputs_cell(inputs: dict[str, Any]) -> str:
    parts = [short(a, 40) for a in inputs.get("args", [])]
    parts += [f"{k}={short(v, 40)}" for k, v in inputs.get("kwargs", {}).items() if v is not None]
    return short(", ".join(parts), 60) if parts else ""


HEADER = ("Layer (path: class)", "Call", "Input", "Output", "Params", "FLOPs", "FLOPs (total)")


def rows(answer: dict[str, Any], depth: int | None = None) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for c in answer["calls"]:
        if depth is not None and c["depth"] > depth:
            continue
        name = c["path"].rsplit(".", 1)[-1] if c["path"] else "(model)"
        out.append(
            (
                "  " * c["depth"] + f"{name}: {c['class']}",
                str(c["call"]),
                inputs_cell(c["inputs"]),
                short(c["outputs"]),
                f"{c['params']:,}" if c["params"] else "--",
                si(c["flops"]) if c["flops"] else "--",
                si(c["flops_total"]) if c["flops_total"] else "--",
            )
        )
    return out


def totals_lines(answer: dict[str, Any]) -> list[tuple[str, str]]:
    t = answer["totals"]
    tb = t["training_bytes"]["total"]
    return [
        ("Total FLOPs", f"{t['flops']:,} ({si(t['flops'])})"),
        ("Total MACs", f"{t['macs']:,} ({si(t['macs'])})"),
        ("Parameters", human_bytes(t["param_bytes"]) + f" ({human_bytes(t['trainable_param_bytes'])} trainable)"),
        ("Buffers", human_bytes(t["buffer_bytes"])),
        ("Activations (saved for backward)", human_bytes(t["activation_bytes"])),
        ("Leaf outputs", human_bytes(t["output_bytes"])),
        (
            "Training memory (estimate)",
            f"SGD+momentum {human_bytes(tb['sgd_momentum'])}, Adam/AdamW {human_bytes(tb['adam'])}",
        ),
    ]


def _header_lines(answer: dict[str, Any], title: str) -> tuple[str, str]:
    """``title: forward on fake tensors (cpu kernels), train mode`` and the inputs line."""
    run = (
        f"forward on {answer['mode']} tensors ({answer['device']} kernels), "
        f"{'train' if answer['training'] else 'eval'} mode"
    )
    shown = parse_inputs(answer["inputs"]).short()
    inputs = f"inputs ({answer['source']}): {shown}" + (f"  [{answer['note']}]" if answer.get("note") else "")
    return f"{title}: {run}", inputs


def format_text(answer: dict[str, Any], title: str = "model", depth: int | None = None, explain: bool = False) -> str:
    """The table for a terminal: indented layers, aligned columns, totals under it."""
    body = rows(answer, depth)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    right = {1, 4, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "=" * len(line(HEADER))
    out = [*_header_lines(answer, title), rule, line(HEADER), rule]
    out += [line(r) for r in body]
    out.append(rule)
    hidden = len(answer["calls"]) - len(body)
    if hidden:
        out.append(f"({hidden:,} calls deeper than --depth {depth} not shown; totals include them)")
    label_w = max(len(k) for k, _ in totals_lines(answer))
    out += [f"{k.ljust(label_w)}  {v}" for k, v in totals_lines(answer)]
    out.append(rule)
    for w in answer.get("warnings", []):
        out.append(f"warning: {w}")
    if explain:
        out += ["", *(f"{k}: {v}" for k, v in EXPLAIN.items())]
    return "\n".join(out)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def format_markdown(answer: dict[str, Any], title: str = "model", depth: int | None = None) -> str:
    """The same table as GitHub-flavoured Markdown (full paths, code-formatted), with the totals."""
    run, inputs = _header_lines(answer, "")
    out = [f"**{_md(title)}**{_md(run)}", "", _md(inputs), ""]
    out.append("| " + " | ".join(("Path", "Class", *HEADER[1:])) + " |")
    out.append("|" + "|".join(["---", "---", "--:", "---", "---", "--:", "--:", "--:"]) + "|")
    kept = [c for c in answer["calls"] if depth is None or c["depth"] <= depth]
    for c, r in zip(kept, rows(answer, depth), strict=True):
        path = "&nbsp;" * 2 * c["depth"] + f"`{c['path'] or '(model)'}`"
        out.append("| " + " | ".join([path, c["class"], *(_md(x) for x in r[1:])]) + " |")
    out.append("")
    out += [f"- **{k}**: {v}" for k, v in totals_lines(answer)]
    out += [f"- warning: {_md(w)}" for w in answer.get("warnings", [])]
    return "\n".join(out)


def format_table(answer: dict[str, Any], fmt: TableFormat, title: str = "model", depth: int | None = None) -> str:
    if fmt is TableFormat.markdown:
        return format_markdown(answer, title, depth)
    return format_text(answer, title, depth)
