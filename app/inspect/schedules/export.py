"""Exports of a preview: a runnable Python snippet and CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchscope.inspect import safe_expr
from torchscope.inspect.schedules.catalogue import StepMode
from torchscope.inspect.schedules.encoding import tolist
from torchscope.inspect.schedules.preview import Preview
from torchscope.inspect.schedules.requests import PreviewSpec, SchedulerSpec


def _py(v: Any) -> str:
    if isinstance(v, safe_expr.Expr):
        return f"lambda epoch: {v.to_python()}"
    if isinstance(v, list) and v and isinstance(v[0], safe_expr.Expr):
        return "[" + ", ".join(_py(e) for e in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    return repr(v)


def _sched_code(spec: SchedulerSpec, ctx_steps: int, indent: str = "") -> str:
    kw = dict(spec.args)
    if spec.type == "OneCycleLR" and kw.get("total_steps") is None and not (kw.get("epochs") and kw.get("steps_per_epoch")):
        kw["total_steps"] = ctx_steps
    args = ", ".join(f"{k}={_py(v)}" for k, v in kw.items())
    if spec.children:
        inner = indent + "    "
        kids = ",\n".join(inner + "    " + _sched_code(c, ctx_steps, inner + "    ") for c in spec.children)
        lst = f"[\n{kids},\n{inner}]"
        if spec.type == "ChainedScheduler":
            return f"lr_scheduler.ChainedScheduler({lst}, optimizer=optimizer{', ' + args if args else ''})"
        return f"lr_scheduler.{spec.type}(\n{inner}optimizer,\n{inner}schedulers={lst},\n{inner}{args},\n{indent})"
    return f"lr_scheduler.{spec.type}(optimizer{', ' + args if args else ''})"


def snippet(spec: PreviewSpec, param_names: Sequence[Sequence[str]] | None = None) -> str:
    """Python that builds exactly this optimizer and scheduler, with the training-loop skeleton."""
    lines = ["import math", "", "import torch", "from torch.optim import lr_scheduler", ""]
    if param_names is None:
        lines += ["# One placeholder parameter per group; use your model's parameters instead."]
        lines += [f"params = [torch.nn.Parameter(torch.zeros(1)) for _ in range({len(spec.groups)})]", ""]
        grp = [f"    {{\"params\": [params[{i}]]" + "".join(f", {k!r}: {_py(v)}" for k, v in g.items()) + "},"
               for i, g in enumerate(spec.groups)]
    else:
        lines += ["model = ...  # your model", "named = dict(model.named_parameters())", ""]
        grp = []
        for i, (g, names) in enumerate(zip(spec.groups, param_names, strict=True)):
            opts = "".join(f", {k!r}: {_py(v)}" for k, v in g.items())
            lst = ", ".join(repr(n) for n in names)
            grp.append(f"    # {spec.group_names[i]}: {len(names)} parameter(s)")
            grp.append(f"    {{\"params\": [named[n] for n in [{lst}]]{opts}}},")
    oargs = "".join(f", {k}={_py(v)}" for k, v in spec.optimizer.args.items())
    lines += [f"optimizer = torch.optim.{spec.optimizer.type}([", *grp, f"]{oargs})"]
    n = spec.scheduler_steps
    lines += [f"scheduler = {_sched_code(spec.scheduler, n)}", ""]
    per_batch = spec.step is StepMode.BATCH
    metric = spec.scheduler.info.needs_metrics
    step_call = "scheduler.step(val_loss)" if metric else "scheduler.step()"
    lines += [
        f"for epoch in range({spec.epochs}):",
        f"    for batch in range({spec.steps_per_epoch}):  # for batch in loader:",
        "        optimizer.zero_grad()",
        "        # loss = criterion(model(inputs), targets); loss.backward()",
        "        optimizer.step()",
    ]
    if per_batch:
        lines += [f"        {step_call}  # per batch, after optimizer.step()"]
    else:
        if metric:
            lines += ["    val_loss = ...  # validation metric for this epoch"]
        lines += [f"    {step_call}  # once per epoch, after the last batch"]
    return "\n".join(lines) + "\n"


def csv_text(result: Preview) -> str:
    """CSV of the curves: step, epoch, then lr (and momentum) per group."""
    cols = ["step", "epoch"]
    for g in result.groups:
        cols.append(f"{g.name}_lr")
        if g.momentum is not None:
            cols.append(f"{g.name}_momentum")
    rows = [",".join(cols)]
    spe = result.steps_per_epoch
    columns: list[list[Any]] = [result.x.tolist(), (result.x / spe).tolist()]
    for g in result.groups:
        columns.append(tolist(g.lr))
        if g.momentum is not None:
            columns.append(tolist(g.momentum))
    for row in zip(*columns, strict=True):
        rows.append(",".join("" if v is None else repr(v) for v in row))
    return "\n".join(rows) + "\n"
