"""Resume (issue 12): "what will my LR be when I resume this run", against the live run continued.

A training run is stepped by hand, saved with torch.save like a training script does, opened
by torchscope, and resumed; the reference is the very same live optimizer and scheduler,
stepped on. Values must be equal, bit for bit.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L
from torch.optim import swa_utils

from torchscope.inspect import schedules as S
from torchscope.inspect.checkpoints import open_checkpoint
from torchscope.inspect.errors import InvalidRequest

Make = Callable[[torch.optim.Optimizer], Any]


def run(make: Make, steps: int, opt_cls: type = torch.optim.SGD, **opt_kw: Any) -> tuple[torch.optim.Optimizer, Any]:
    model = torch.nn.Linear(3, 2)
    decay, no_decay = [model.weight], [model.bias]
    opt = opt_cls([{"params": decay}, {"params": no_decay, "lr": 0.05, "weight_decay": 0.0}], **{"lr": 0.1, **opt_kw})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        for _ in range(steps):  # optimizer.step() changes no lr: left out, as it costs 10x a scheduler step
            sched.step()
    return opt, sched


def continued(opt: torch.optim.Optimizer, sched: Any, more: int) -> tuple[np.ndarray, int | None]:
    lrs, crash = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(more + 1):
            lrs.append([g["lr"] for g in opt.param_groups])
            if k == more:
                break
            try:
                sched.step()
            except ValueError:
                crash = k + 1
                break
    return np.array(lrs).T, crash


CASES: list[tuple[str, Make, dict[str, Any]]] = [
    ("step", lambda o: L.StepLR(o, 7, 0.5), {}),
    ("multistep-repeated", lambda o: L.MultiStepLR(o, [15, 30, 30], 0.5), {}),
    ("cosine", lambda o: L.CosineAnnealingLR(o, 40, 1e-3), {}),
    ("warm-restarts", lambda o: L.CosineAnnealingWarmRestarts(o, 7, 2), {}),
    ("onecycle-adamw", lambda o: L.OneCycleLR(o, [0.3, 0.2], total_steps=60), {"opt_cls": torch.optim.AdamW}),
    ("cyclic", lambda o: L.CyclicLR(o, [0.01, 0.02], 0.1, 5, mode="triangular2"), {"momentum": 0.9}),
    ("warmup-then-cosine", lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=5), L.CosineAnnealingLR(o, 30)], [5]), {}),
    ("chained", lambda o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 25), L.ExponentialLR(o, 0.95)]), {}),
    ("swalr", lambda o: swa_utils.SWALR(o, [0.01, 0.02], 20), {}),
    ("polynomial", lambda o: L.PolynomialLR(o, 30, 2.0), {}),
]


@pytest.mark.parametrize(("name", "make", "kw"), CASES, ids=[c[0] for c in CASES])
def test_resume_from_an_opened_checkpoint_equals_the_run_continued(name: str, make: Make, kw: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    opt, sched = run(make, 12, **kw)
    path = tmp_path / "train.pt"
    torch.save({"model": {}, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(), "step": 12}, path)
    ckpt = open_checkpoint(path)
    assert [s.path for s in ckpt.schedulers] == ["lr_scheduler"]
    out = S.resume_checkpoint(ckpt, "lr_scheduler", steps=50, encoding="json")
    ref, crash = continued(opt, sched, 50)
    got = np.array([g["lr"] for g in out["groups"]], dtype=float)
    assert out["optimizer_path"] == "optimizer" and out["groups_from"] == "optimizer param_groups"
    assert out["x"][0] == out["last_epoch"] == 12
    assert np.array_equal(got[:, : ref.shape[1]], ref)
    assert out["crash_at"] == crash  # OneCycleLR: torch raises past total_steps, and so does the resume
    if crash is not None:
        assert "Tried to step 61 times" in out["crash"] and "stepped-past-end" in out["warning_codes"]


def test_resume_a_long_run_for_100k_more_steps(tmp_path: Path) -> None:
    opt, sched = run(lambda o: L.OneCycleLR(o, [0.3, 0.2], total_steps=140_000, three_phase=True), 30_000,
                     torch.optim.AdamW)
    path = tmp_path / "long.pt"
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, path)
    out = S.resume_checkpoint(open_checkpoint(path), "scheduler", steps=100_000)
    ref, crash = continued(opt, sched, 100_000)
    assert crash is None and out["last_epoch"] == 30_000
    assert np.array_equal(np.stack([g["lr"] for g in out["groups"]]), ref)
    assert out["momentum_key"] == "betas" and out["groups"][0]["momentum"] is not None


def test_resume_from_json_state_alone() -> None:
    # json.dumps(scheduler.state_dict()): a Counter becomes {"15": 1}, tuples lists; no optimizer state
    opt, sched = run(lambda o: L.MultiStepLR(o, [15, 30, 30], 0.5), 12)
    state = json.loads(json.dumps(sched.state_dict()))
    result = S.resume(state, steps=40)
    ref, _ = continued(opt, sched, 40)
    assert result.type == "MultiStepLR" and result.groups_from == "the scheduler's _last_lr"
    assert np.array_equal(result.lr, ref)


def test_lambda_states_need_the_expression_and_the_kind() -> None:
    opt, sched = run(lambda o: L.LambdaLR(o, lambda e: 0.9**e), 12)
    state = sched.state_dict()
    with pytest.raises(InvalidRequest, match="LambdaLR or MultiplicativeLR"):
        S.resume(state, steps=5)
    with pytest.raises(InvalidRequest, match="saves no lambda"):
        S.resume(state, steps=5, scheduler_type="LambdaLR")
    result = S.resume(state, steps=20, scheduler_type="LambdaLR", lr_lambda="0.9 ** epoch",
                      optimizer_groups=opt.state_dict()["param_groups"])
    ref, _ = continued(opt, sched, 20)
    assert np.array_equal(result.lr, ref)


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"optimizer": "x"}, "StepLR saves no 'optimizer'"),
        ({"__class__": 1}, "StepLR saves no '__class__'"),
        ({"gamma": "fast"}, "state.gamma: must be a number"),
        ({"last_epoch": 1.5}, "state.last_epoch: must be an integer"),
        ({"_last_lr": [0.1]}, "state.base_lrs: must list 1 number(s)"),
        ({"base_lrs": "all"}, "state.base_lrs: must list 2"),
    ],
)
def test_a_hostile_state_is_a_422_before_load_state_dict(patch: dict[str, Any], fragment: str) -> None:
    _, sched = run(lambda o: L.StepLR(o, 7, 0.5), 3)
    with pytest.raises(InvalidRequest, match=re.escape(fragment)):
        S.resume({**sched.state_dict(), **patch}, steps=5)


def test_states_that_cannot_be_continued_say_why() -> None:
    _, cyc = run(lambda o: L.CyclicLR(o, 0.01, 0.1), 3, momentum=0.9)
    with pytest.raises(InvalidRequest, match="mode: must be one of"):
        S.resume({**cyc.state_dict(), "mode": "evil"}, steps=5)
    _, one = run(lambda o: L.OneCycleLR(o, 0.1, total_steps=50), 3)
    with pytest.raises(InvalidRequest, match="keeps max_lr, min_lr"):
        S.resume(one.state_dict(), steps=5)  # without the optimizer's param_groups
    _, plateau = run(lambda o: L.ReduceLROnPlateau(o), 0)
    with pytest.raises(InvalidRequest, match="ReduceLROnPlateau"):
        S.resume(plateau.state_dict(), steps=5)
    with pytest.raises(InvalidRequest, match="not a state_dict of a scheduler"):
        S.resume({"epoch": 3}, steps=5)
    with pytest.raises(InvalidRequest, match="steps"):
        S.resume(cyc.state_dict(), steps=10**9)
