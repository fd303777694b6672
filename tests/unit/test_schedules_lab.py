"""Issue 8 item 5 in the LR lab's domain: per-epoch OneCycleLR, the per-batch overlay, the snippet.

The snippet is executed here (our own generated code) on a real model and stepped like the
preview; param groups are compared with the lab's membership.
"""

from __future__ import annotations

import ast
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from torchscope.inspect import param_groups as pg
from torchscope.inspect import schedules as S


def body(scheduler: dict[str, Any], epochs: int = 10, spe: int = 50, step: str = "epoch", **extra: Any) -> dict[str, Any]:
    return {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "groups": [{}], "scheduler": scheduler,
            "epochs": epochs, "steps_per_epoch": spe, "step": step, **extra}


def test_onecycle_per_epoch_warns_what_the_chart_shows() -> None:
    # total_steps defaults to this run's scheduler steps (10 epochs): a full cycle, stepped between epochs
    result = S.preview(S.parse_request(body({"type": "OneCycleLR", "args": {"max_lr": 0.5}})))
    lr = result.groups[0].lr
    assert lr.max() == pytest.approx(0.5) and lr[-1] < 1e-4  # the whole cycle is drawn
    text = result.warnings[result.warning_codes.index("batch-schedule-per-epoch")]
    assert "barely moves" not in text and "whole cycle runs over the 10 epochs" in text
    assert "total_steps = epochs * steps_per_epoch = 500" in text
    # where it really barely moves, it says so, with the share of the cycle
    small = S.preview(S.parse_request(body({"type": "OneCycleLR", "args": {"max_lr": 0.5, "total_steps": 500}})))
    assert "barely moves (2% of the cycle)" in small.warnings[small.warning_codes.index("batch-schedule-per-epoch")]
    cyc = S.preview(S.parse_request(body({"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1}})))
    assert "barely moves" in cyc.warnings[cyc.warning_codes.index("batch-schedule-per-epoch")]


def test_per_batch_overlay_keeps_total_steps_and_shows_where_torch_raises() -> None:
    # The user's code: OneCycleLR(total_steps=epochs) stepped per batch by mistake -> torch raises at step 11.
    result = S.preview(S.parse_request(body({"type": "OneCycleLR", "args": {"max_lr": 0.5}}, overlay_batch_mistake=True)))
    assert result.mistake is not None
    wrong = result.mistake[0].lr
    assert not np.isnan(wrong[:11]).any() and np.isnan(wrong[11:]).all()
    # the same values torch gives for OneCycleLR(total_steps=10) stepped per batch
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.5, total_steps=10)
    ref = []
    for _ in range(11):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        if len(ref) < 11:
            sched.step()
    assert wrong[:11].tolist() == ref
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()
    text = result.warnings[result.warning_codes.index("overlay-crash")]
    assert "scheduler.step() call number 11 (after optimizer step 10: epoch 0, batch 10)" in text
    assert "Tried to step 11 times. The specified number of total steps is 10" in text


class NormNet(nn.Module):
    """Linear layers and LayerNorms, the usual weight-decay split."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3)])
        self.head = nn.Linear(8, 2)


def _run(code: str, model: nn.Module) -> dict[str, Any]:
    head = code.split("for epoch in range")[0].replace("model = ...  # your model", "")
    ns: dict[str, Any] = {"model": model}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(head, "<snippet>", "exec"), ns)  # our own generated code, in a test
    return ns


def _unused_imports(code: str) -> list[str]:
    tree = ast.parse(code)
    imported = [a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names]
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return [name.split(".")[0] for name in imported if name.split(".")[0] not in used]


def test_model_snippet_builds_the_groups_from_the_typed_patterns() -> None:
    model = NormNet()
    rules = pg.parse_rules([{"name": "no_decay", "match": ["*.bias", "LayerNorm"], "weight_decay": 0.0},
                            {"name": "head", "match": ["name:head.*"], "lr": 0.01}])
    membership = pg.resolve(model, rules)
    spec = S.parse_request({**body({"type": "CosineAnnealingLR", "args": {"T_max": 10}}), "optimizer": {"type": "AdamW", "lr": 1e-3}},
                           group_names=[g.name for g in membership.groups], group_overrides=[g.options for g in membership.groups])
    code = S.snippet(spec, membership)
    assert "'fc" not in code and "blocks.0.0.weight" not in code  # patterns, not parameter names
    assert "    ['*.bias', 'LayerNorm'],  # no_decay: 11 parameter(s)" in code
    assert _unused_imports(code) == []
    opt = _run(code, model)["optimizer"]
    names = {id(p): n for n, p in model.named_parameters()}
    got = [[names[id(p)] for p in g["params"]] for g in opt.param_groups]
    assert got == [list(g.params) for g in membership.groups]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.01, 0.01] and opt.param_groups[1]["lr"] == 0.01


def test_placeholder_snippet_imports_only_what_it_uses() -> None:
    plain = S.snippet(S.parse_request(body({"type": "StepLR", "args": {"step_size": 3}})))
    assert "import math" not in plain and _unused_imports(plain) == []
    lam = S.snippet(S.parse_request(body({"type": "LambdaLR", "args": {"lr_lambda": "epoch // 10 if epoch < 5 else cos(epoch)"}})))
    assert "import math" in lam and _unused_imports(lam) == []
    assert "lambda epoch: ((epoch // 10) if (epoch < 5) else math.cos(epoch))" in lam


def test_swa_snippet_runs_the_preview_s_schedule() -> None:
    b = body({"type": "CosineAnnealingLR", "args": {"T_max": 30}}, epochs=40, spe=1,
             swa={"start": 29, "scheduler": {"type": "SWALR", "args": {"swa_lr": 0.05, "anneal_epochs": 3}}})
    spec = S.parse_request(b)
    code = S.snippet(spec)
    assert "from torch.optim import lr_scheduler, swa_utils" in code and "if epoch > swa_start:" in code
    assert _unused_imports(code) == []
    ns = _run(code, nn.Linear(1, 1))
    opt, sched, swa = ns["optimizer"], ns["scheduler"], ns["swa_scheduler"]
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(40):
            values.append(opt.param_groups[0]["lr"])
            opt.step()
            swa.step() if epoch > ns["swa_start"] else sched.step()
    assert values == S.preview(spec).groups[0].lr.tolist()
