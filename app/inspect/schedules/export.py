"""Exports of a preview: a runnable Python snippet and CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torchscope.inspect import safe_expr
from torchscope.inspect.param_groups import Membership
from torchscope.inspect.schedules.catalogue import StepMode
from torchscope.inspect.schedules.encoding import tolist
from torchscope.inspect.schedules.overrides import EXTRA_SCHEDULERS
from torchscope.inspect.schedules.preview import Preview
from torchscope.inspect.schedules.requests import PreviewSpec, SchedulerSpec
from torchscope.inspect.schedules.stepping import resolve_context


def _py(v: Any) -> str:
    if isinstance(v, safe_expr.Expr):
        return f"lambda epoch: {v.to_python()}"
    if isinstance(v, list) and v and isinstance(v[0], safe_expr.Expr):
        return "[" + ", ".join(_py(e) for e in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    return repr(v)


def _module_of(typ: str) -> str:
    return EXTRA_SCHEDULERS[typ].__name__.rpartition(".")[2] if typ in EXTRA_SCHEDULERS else "lr_scheduler"


def _sched_code(spec: SchedulerSpec, indent: str = "") -> str:
    args = ", ".join(f"{k}={_py(v)}" for k, v in spec.args.items())
    cls = f"{_module_of(spec.type)}.{spec.type}"
    if spec.children:
        inner = indent + "    "
        kids = ",\n".join(inner + "    " + _sched_code(c, inner + "    ") for c in spec.children)
        lst = f"[\n{kids},\n{inner}]"
        if spec.type == "ChainedScheduler":
            return f"{cls}({lst}, optimizer=optimizer{', ' + args if args else ''})"
        return f"{cls}(\n{inner}optimizer,\n{inner}schedulers={lst},\n{inner}{args},\n{indent})"
    return f"{cls}(optimizer{', ' + args if args else ''})"


def _walk(spec: SchedulerSpec) -> Iterator[SchedulerSpec]:
    yield spec
    for c in spec.children:
        yield from _walk(c)


def _imports(spec: PreviewSpec, by_pattern: bool) -> list[str]:
    """Only what the code below uses (``math`` for lambdas that call it, ``swa_utils`` for SWALR)."""
    specs = list(_walk(spec.scheduler)) + ([] if spec.swa is None else list(_walk(spec.swa.scheduler)))
    values = [v for s in specs for v in s.args.values()]
    exprs = [e for v in values for e in (v if isinstance(v, list) else [v]) if isinstance(e, safe_expr.Expr)]
    modules = sorted({_module_of(s.type) for s in specs})
    lines = []
    if by_pattern:
        lines.append("from fnmatch import fnmatchcase")
    if any(e.uses_math for e in exprs):
        lines.append("import math")
    if lines:
        lines.append("")
    return [*lines, "import torch", f"from torch.optim import {', '.join(modules)}", ""]


# Mirrors param_groups.resolve: the first group with a matching pattern wins, "class:"/"name:" force one.
_GROUP_OF = '''

def group_of(name):
    owner = model.get_submodule(name.rpartition(".")[0])
    classes = [c.__name__ for c in type(owner).__mro__ if c not in (object, torch.nn.Module)]
    for i, patterns in enumerate(PATTERNS):
        for p in patterns:
            if p.startswith("class:"):
                hit = any(fnmatchcase(c, p[6:]) for c in classes)
            elif p.startswith("name:"):
                hit = fnmatchcase(name, p[5:])
            else:
                hit = fnmatchcase(name, p) or any(fnmatchcase(c, p) for c in classes)
            if hit:
                return i
    return len(PATTERNS)


groups = [[] for _ in range(len(PATTERNS) + 1)]
for name, param in model.named_parameters():
    groups[group_of(name)].append(param)
'''


def _groups_by_pattern(spec: PreviewSpec, membership: Membership) -> list[str]:
    rules = [g for g in membership.groups if not g.is_default]
    lines = ["model = ...  # your model", "",
             "# Param groups as typed in the lab: a parameter joins the first group with a pattern matching its",
             "# name or its module's class; the rest keep the optimizer's defaults.",
             "PATTERNS = ["]
    lines += [f"    {list(g.patterns)!r},  # {g.name}: {g.count} parameter(s)" for g in rules]
    lines += ["]", *_GROUP_OF.split("\n")[1:]]
    entries = []
    for i, (g, opts) in enumerate(zip(membership.groups, spec.groups, strict=True)):
        extra = "".join(f', "{k}": {_py(v)}' for k, v in opts.items())
        where = f"groups[{len(rules)}]" if g.is_default else f"groups[{i}]"
        note = "everything else" if g.is_default else ", ".join(g.patterns)
        entries.append(f"    {{\"params\": {where}{extra}}},  # {g.name}: {note} ({g.count} parameter(s))")
    if not any(g.is_default for g in membership.groups):
        lines.append('assert not groups[-1], "parameters that no pattern matches"')
    return [*lines, "", "__GROUPS__", *entries]


def snippet(spec: PreviewSpec, membership: Membership | None = None) -> str:
    """Python that builds exactly this optimizer and scheduler, with the training-loop skeleton.

    With a model's ``membership``, groups are written as the patterns the user typed (a
    GPT-2 has 148 parameter names; its groups are two lines of patterns).
    """
    lines = _imports(spec, membership is not None)
    if membership is None:
        lines += ["# One placeholder parameter per group; use your model's parameters instead."]
        lines += [f"params = [torch.nn.Parameter(torch.zeros(1, 1)) for _ in range({len(spec.groups)})]", ""]
        grp = [f"    {{\"params\": [params[{i}]]" + "".join(f', "{k}": {_py(v)}' for k, v in g.items()) + "},"
               for i, g in enumerate(spec.groups)]
    else:
        body = _groups_by_pattern(spec, membership)
        cut = body.index("__GROUPS__")
        lines += body[:cut]
        grp = body[cut + 1 :]
    oargs = "".join(f", {k}={_py(v)}" for k, v in spec.optimizer.args.items())
    lines += [f"optimizer = torch.optim.{spec.optimizer.type}([", *grp, f"]{oargs})"]
    n = spec.scheduler_steps
    lines += [f"scheduler = {_sched_code(resolve_context(spec.scheduler, n))}"]
    if spec.swa is not None:
        lines += [f"swa_scheduler = {_sched_code(spec.swa.scheduler)}", f"swa_start = {spec.swa.start}"]
    lines += [""]
    return "\n".join(lines + _loop(spec)) + "\n"


def _loop(spec: PreviewSpec) -> list[str]:
    per_batch = spec.step is StepMode.BATCH
    metric = spec.scheduler.info.needs_metrics
    step_call = "scheduler.step(val_loss)" if metric else "scheduler.step()"
    lines = [
        f"for epoch in range({spec.epochs}):",
        f"    for batch in range({spec.steps_per_epoch}):  # for batch in loader:",
        "        optimizer.zero_grad()",
        "        # loss = criterion(model(inputs), targets); loss.backward()",
        "        optimizer.step()",
    ]
    pad = "        " if per_batch else "    "
    where = "# per batch, after optimizer.step()" if per_batch else "# once per epoch, after the last batch"
    if metric and not per_batch:
        lines += ["    val_loss = ...  # validation metric for this epoch"]
    if spec.swa is not None:
        counter = f"epoch * {spec.steps_per_epoch} + batch" if per_batch else "epoch"
        return [*lines, f"{pad}if {counter} > swa_start:  # torch's SWA recipe",
                f"{pad}    swa_scheduler.step()", f"{pad}else:", f"{pad}    {step_call}  {where}"]
    return [*lines, f"{pad}{step_call}  {where}"]


def csv_text(result: Preview) -> str:
    """CSV of the curves: step, epoch, then lr (and momentum) per group."""
    return "".join(csv_chunks(result))


def csv_chunks(result: Preview, rows_per_chunk: int = 20_000) -> Iterator[str]:
    """The same CSV in pieces, so a long schedule is streamed rather than built whole (issue 9)."""
    cols = ["step", "epoch"]
    for g in result.groups:
        cols.append(f"{g.name}_lr")
        if g.momentum is not None:
            cols.append(f"{g.name}_momentum")
    yield ",".join(cols) + "\n"
    spe = result.steps_per_epoch
    series = []
    for g in result.groups:
        series.append(g.lr)
        if g.momentum is not None:
            series.append(g.momentum)
    n = len(result.x)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        x = result.x[start:stop]
        columns: list[list[Any]] = [x.tolist(), (x / spe).tolist(), *(tolist(s[start:stop]) for s in series)]
        yield "".join(",".join("" if v is None else repr(v) for v in row) + "\n" for row in zip(*columns, strict=True))
