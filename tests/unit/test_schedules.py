"""Previews equal stepping torch's own schedulers; closed forms; warnings; validation; export.

The reference in every comparison is written by hand here, with torch's classes and plain
Python lambdas, and stepped the way a training loop steps them.
"""

from __future__ import annotations

import ast
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from torchscope.inspect import schedules as S
from torchscope.inspect.errors import InvalidRequest

TOL = 1e-12
OPT = {"type": "SGD", "lr": 0.1, "momentum": 0.9}
GROUPS = [{}, {"lr": 0.05}, {"lr": 0.3, "momentum": 0.5}]

Factory = Callable[[torch.optim.Optimizer], Any]


def torch_reference(body: dict[str, Any], factory: Factory, metrics: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Build the optimizer by hand, step it like a training loop, record lr and momentum per optimizer step."""
    opt_args = {k: v for k, v in body["optimizer"].items() if k != "type"}
    params = [{"params": [torch.zeros(1, requires_grad=True)], **g} for g in body["groups"]]
    opt = getattr(torch.optim, body["optimizer"]["type"])(params, **opt_args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = factory(opt)
        lrs, moms = [], []
        calls = 0
        for _epoch in range(body["epochs"]):
            for _b in range(body["steps_per_epoch"]):
                lrs.append([float(v) for v in sched.get_last_lr()])
                key = "betas" if "betas" in opt.defaults else "momentum"
                moms.append([float(g[key][0] if key == "betas" else g[key]) for g in opt.param_groups])
                opt.step()
                if body["step"] == "batch":
                    sched.step(metrics[calls]) if metrics is not None else sched.step()
                    calls += 1
            if body["step"] == "epoch":
                sched.step(metrics[calls]) if metrics is not None else sched.step()
                calls += 1
    return np.array(lrs).T, np.array(moms).T


def request(scheduler: dict[str, Any], epochs: int = 40, spe: int = 3, step: str = "epoch",
            opt: dict[str, Any] | None = None, groups: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"optimizer": opt or OPT, "groups": groups if groups is not None else GROUPS, "scheduler": scheduler,
            "epochs": epochs, "steps_per_epoch": spe, "step": step, **extra}


def arrays(result: S.Preview) -> tuple[np.ndarray, np.ndarray]:
    lr = np.stack([g.lr for g in result.groups])
    mom = np.stack([g.momentum for g in result.groups])  # type: ignore[arg-type]
    return lr, mom


# (spec, hand-written torch factory, expected engine)
CASES: list[tuple[str, dict[str, Any], Factory]] = [
    ("step", {"type": "StepLR", "args": {"step_size": 7, "gamma": 0.5}}, lambda o: L.StepLR(o, 7, 0.5)),
    ("multistep", {"type": "MultiStepLR", "args": {"milestones": [0, 10, 25], "gamma": 0.3}},
     lambda o: L.MultiStepLR(o, [0, 10, 25], 0.3)),
    ("constant", {"type": "ConstantLR", "args": {"factor": 0.3, "total_iters": 8}}, lambda o: L.ConstantLR(o, 0.3, 8)),
    ("linear", {"type": "LinearLR", "args": {"start_factor": 0.1, "end_factor": 0.9, "total_iters": 13}},
     lambda o: L.LinearLR(o, 0.1, 0.9, 13)),
    ("exponential", {"type": "ExponentialLR", "args": {"gamma": 0.93}}, lambda o: L.ExponentialLR(o, 0.93)),
    ("polynomial", {"type": "PolynomialLR", "args": {"total_iters": 30, "power": 2.5}},
     lambda o: L.PolynomialLR(o, 30, 2.5)),
    ("cosine", {"type": "CosineAnnealingLR", "args": {"T_max": 7}}, lambda o: L.CosineAnnealingLR(o, 7)),
    ("cosine-eta", {"type": "CosineAnnealingLR", "args": {"T_max": 9, "eta_min": 0.001}},
     lambda o: L.CosineAnnealingLR(o, 9, 0.001)),
    ("lambda", {"type": "LambdaLR", "args": {"lr_lambda": "0.95 ** epoch * (1 + cos(pi * epoch / 20))"}},
     lambda o: L.LambdaLR(o, lambda e: 0.95**e * (1 + math.cos(math.pi * e / 20)))),
    ("lambda-per-group", {"type": "LambdaLR", "args": {"lr_lambda": ["min(1, (epoch + 1) / 5)", "0.9 ** epoch", "1"]}},
     lambda o: L.LambdaLR(o, [lambda e: min(1, (e + 1) / 5), lambda e: 0.9**e, lambda e: 1])),
    ("multiplicative", {"type": "MultiplicativeLR", "args": {"lr_lambda": "1 - 0.01 * sin(epoch)"}},
     lambda o: L.MultiplicativeLR(o, lambda e: 1 - 0.01 * math.sin(e))),
    ("warm-restarts", {"type": "CosineAnnealingWarmRestarts", "args": {"T_0": 5, "T_mult": 2, "eta_min": 1e-4}},
     lambda o: L.CosineAnnealingWarmRestarts(o, 5, 2, 1e-4)),
    ("cyclic", {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": [0.1, 0.2, 0.3], "step_size_up": 5, "step_size_down": 3}},
     lambda o: L.CyclicLR(o, 0.01, [0.1, 0.2, 0.3], 5, 3)),
    ("cyclic-tri2", {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "triangular2"}},
     lambda o: L.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2")),
    ("cyclic-exp", {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "exp_range", "gamma": 0.99}},
     lambda o: L.CyclicLR(o, 0.01, 0.1, 4, mode="exp_range", gamma=0.99)),
    ("onecycle", {"type": "OneCycleLR", "args": {"max_lr": [0.1, 0.2, 0.3], "total_steps": 40}},
     lambda o: L.OneCycleLR(o, [0.1, 0.2, 0.3], total_steps=40)),
    ("onecycle-3phase", {"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 40, "anneal_strategy": "linear", "three_phase": True}},
     lambda o: L.OneCycleLR(o, 0.1, total_steps=40, anneal_strategy="linear", three_phase=True)),
    ("sequential", {"type": "SequentialLR", "args": {"milestones": [5], "schedulers": [
        {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
        {"type": "CosineAnnealingLR", "args": {"T_max": 35}}]}},
     lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=5), L.CosineAnnealingLR(o, 35)], [5])),
    ("sequential-4", {"type": "SequentialLR", "args": {"milestones": [5, 20, 30], "schedulers": [
        {"type": "ConstantLR", "args": {"factor": 0.5, "total_iters": 3}},
        {"type": "ExponentialLR", "args": {"gamma": 0.9}},
        {"type": "MultiplicativeLR", "args": {"lr_lambda": "0.98"}},
        {"type": "CosineAnnealingLR", "args": {"T_max": 10, "eta_min": 0.001}}]}},
     lambda o: L.SequentialLR(o, [L.ConstantLR(o, 0.5, 3), L.ExponentialLR(o, 0.9),
                                  L.MultiplicativeLR(o, lambda e: 0.98), L.CosineAnnealingLR(o, 10, 0.001)], [5, 20, 30])),
    ("sequential-restarts", {"type": "SequentialLR", "args": {"milestones": [10], "schedulers": [
        {"type": "LambdaLR", "args": {"lr_lambda": "(epoch + 1) / 10"}},
        {"type": "CosineAnnealingWarmRestarts", "args": {"T_0": 10}}]}},
     lambda o: L.SequentialLR(o, [L.LambdaLR(o, lambda e: (e + 1) / 10), L.CosineAnnealingWarmRestarts(o, 10)], [10])),
    ("chained", {"type": "ChainedScheduler", "args": {"schedulers": [
        {"type": "ConstantLR", "args": {"factor": 0.5, "total_iters": 5}},
        {"type": "ExponentialLR", "args": {"gamma": 0.95}},
        {"type": "LinearLR", "args": {"start_factor": 0.2, "total_iters": 9}}]}},
     lambda o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 5), L.ExponentialLR(o, 0.95), L.LinearLR(o, 0.2, total_iters=9)])),
    ("chained-cosine", {"type": "ChainedScheduler", "args": {"schedulers": [
        {"type": "CosineAnnealingLR", "args": {"T_max": 10}}, {"type": "ExponentialLR", "args": {"gamma": 0.95}}]}},
     lambda o: L.ChainedScheduler([L.CosineAnnealingLR(o, 10), L.ExponentialLR(o, 0.95)])),
    ("nested", {"type": "ChainedScheduler", "args": {"schedulers": [
        {"type": "SequentialLR", "args": {"milestones": [10], "schedulers": [
            {"type": "LinearLR", "args": {"start_factor": 0.2, "total_iters": 10}},
            {"type": "StepLR", "args": {"step_size": 3}}]}},
        {"type": "ExponentialLR", "args": {"gamma": 0.97}}]}},
     lambda o: L.ChainedScheduler([L.SequentialLR(o, [L.LinearLR(o, 0.2, total_iters=10), L.StepLR(o, 3)], [10]),
                                   L.ExponentialLR(o, 0.97)])),
    ("sequential-onecycle", {"type": "SequentialLR", "args": {"milestones": [10], "schedulers": [
        {"type": "OneCycleLR", "args": {"max_lr": 0.5, "total_steps": 80}},
        {"type": "ExponentialLR", "args": {"gamma": 0.95}}]}},
     lambda o: L.SequentialLR(o, [L.OneCycleLR(o, 0.5, total_steps=80), L.ExponentialLR(o, 0.95)], [10])),
]


@pytest.mark.parametrize("step", ["epoch", "batch"])
@pytest.mark.parametrize(("name", "scheduler", "factory"), CASES, ids=[c[0] for c in CASES])
def test_preview_equals_stepping_torch(name: str, scheduler: dict[str, Any], factory: Factory, step: str) -> None:
    body = request(scheduler, epochs=13 if step == "batch" else 40, spe=3, step=step)
    result = S.preview(S.parse_request(body))
    ref_lr, ref_mom = torch_reference(body, factory)
    lr, mom = arrays(result)
    assert lr.shape == (3, body["epochs"] * 3)  # one entry per optimizer step
    np.testing.assert_allclose(lr, ref_lr, rtol=0, atol=TOL)
    np.testing.assert_allclose(mom, ref_mom, rtol=0, atol=TOL)
    assert result.x.tolist() == list(range(body["epochs"] * 3))


@pytest.mark.parametrize(("name", "scheduler", "factory"), CASES, ids=[c[0] for c in CASES])
def test_adam_betas_are_the_momentum_series(name: str, scheduler: dict[str, Any], factory: Factory) -> None:
    body = request(scheduler, epochs=30, spe=1, opt={"type": "Adam", "lr": 0.01, "betas": [0.8, 0.99]},
                   groups=[{}, {"lr": 0.002}, {"lr": 0.05, "betas": [0.7, 0.9]}])
    result = S.preview(S.parse_request(body))
    ref_lr, ref_mom = torch_reference(body, factory)
    lr, mom = arrays(result)
    np.testing.assert_allclose(lr, ref_lr, rtol=0, atol=TOL)
    np.testing.assert_allclose(mom, ref_mom, rtol=0, atol=TOL)
    assert result.momentum_key == "betas"


def test_replayed_schedulers_are_bit_identical_to_torch() -> None:
    # cumprod performs torch's multiplications in torch's order, and lambdas and cosines go through
    # libm as Python's do: not merely close, equal.
    for name, scheduler, factory in CASES:
        body = request(scheduler, epochs=40, spe=1)
        result = S.preview(S.parse_request(body))
        ref_lr, _ = torch_reference(body, factory)
        assert np.array_equal(arrays(result)[0], ref_lr), name


def test_long_recursive_cosine_matches_torch_where_the_closed_form_drifts() -> None:
    # torch's recursive CosineAnnealingLR drifts from the closed form after a restart; we follow torch.
    body = request({"type": "CosineAnnealingLR", "args": {"T_max": 2000}}, epochs=6000, spe=1, groups=[{}])
    spec = S.parse_request(body)
    result = S.preview(spec)
    ref_lr, _ = torch_reference(body, lambda o: L.CosineAnnealingLR(o, 2000))
    assert np.array_equal(arrays(result)[0], ref_lr)
    assert result.engine == "exact"


def test_sequential_handing_over_to_a_composite_crashes_as_in_torch() -> None:
    # torch: SequentialLR calls _update_lr(0) -> get_lr() on the next scheduler; ChainedScheduler has none.
    sched = {"type": "SequentialLR", "args": {"milestones": [4], "schedulers": [
        {"type": "ExponentialLR", "args": {"gamma": 0.9}},
        {"type": "ChainedScheduler", "args": {"schedulers": [{"type": "StepLR", "args": {"step_size": 2}}]}}]}}
    out = S.preview(S.parse_request(request(sched, epochs=8, spe=1, groups=[{}]))).to_dict()
    lr = out["groups"][0]["lr"]
    assert lr[3] == pytest.approx(0.1 * 0.9**3) and lr[4] is None
    assert "stepped-past-end" in out["warning_codes"]
    assert "NotImplementedError" in " ".join(out["warnings"])


def test_engines_exact_versus_stepping() -> None:
    replayed = S.preview(S.parse_request(request(CASES[0][1])))
    assert replayed.engine == "exact"
    stepped = S.preview(S.parse_request(request({"type": "ReduceLROnPlateau", "args": {}})))
    assert stepped.engine == "torch"


# ------------------------------------------------------------------ closed forms


CLOSED_FORM_ARGS: list[tuple[str, dict[str, Any], int]] = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, 60),
    ("StepLR", {"step_size": 10, "gamma": 0.9}, 200),
    ("MultiStepLR", {"milestones": [5, 9, 40], "gamma": 0.2}, 80),
    ("MultiStepLR", {"milestones": [0, 1], "gamma": 0.7}, 10),
    ("ConstantLR", {"factor": 0.25, "total_iters": 4}, 20),
    ("ConstantLR", {"factor": 0.9, "total_iters": 50}, 60),
    ("LinearLR", {"start_factor": 0.01, "end_factor": 1.0, "total_iters": 100}, 150),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 7}, 20),
    ("ExponentialLR", {"gamma": 0.99}, 500),
    ("ExponentialLR", {"gamma": 0.5}, 40),
    ("PolynomialLR", {"total_iters": 50, "power": 1.0}, 70),
    ("PolynomialLR", {"total_iters": 20, "power": 3.0}, 30),
    ("CosineAnnealingLR", {"T_max": 100}, 101),
    ("CosineAnnealingLR", {"T_max": 37, "eta_min": 0.01}, 38),
]


@pytest.mark.parametrize(("typ", "args", "n"), CLOSED_FORM_ARGS)
def test_closed_form_matches_stepping(typ: str, args: dict[str, Any], n: int) -> None:
    spec = S.parse_scheduler({"type": typ, "args": args}, "scheduler", 2)
    base = np.array([0.1, 0.37])
    cf = S.closed_form(spec, base, n)
    opt = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": b} for b in base.tolist()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = getattr(L, typ)(opt, **args)
        ref = []
        for _ in range(n):
            ref.append(sched.get_last_lr())
            sched.step()
    np.testing.assert_allclose(cf, np.array(ref).T, rtol=0, atol=TOL)


def test_closed_form_is_not_torch_past_a_cosine_restart() -> None:
    # Why the preview replays the recursion instead: past T_max the two part ways (relative to 1e-12).
    spec = S.parse_scheduler({"type": "CosineAnnealingLR", "args": {"T_max": 20000}}, "scheduler", 1)
    replay = S.replay(spec, np.array([1.0]), 40001).lr[0]
    cf = S.closed_form(spec, np.array([1.0]), 40001)
    assert np.max(np.abs(replay - cf)) > 0  # differs (torch's recursion), while the preview equals torch above


# ------------------------------------------------------------------ plateau


@pytest.mark.parametrize("shape", ["decrease", "plateau", "noisy", "increase"])
def test_plateau_with_synthetic_metrics_equals_torch(shape: str) -> None:
    body = request({"type": "ReduceLROnPlateau", "args": {"patience": 2, "factor": 0.5, "cooldown": 1}},
                   epochs=40, spe=2, metric_shape=shape, metric_seed=3)
    result = S.preview(S.parse_request(body))
    metrics = S.synthetic_metrics(shape, 40, 3)
    ref_lr, _ = torch_reference(body, lambda o: L.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1), metrics)
    np.testing.assert_allclose(arrays(result)[0], ref_lr, rtol=0, atol=TOL)
    if shape == "plateau":
        assert arrays(result)[0][0, -1] < 0.1  # it did reduce


def test_plateau_with_pasted_metrics() -> None:
    pasted = "1.0, 0.9 0.8\n0.8 0.8 0.8 0.8 0.8 0.8 0.8"
    body = request({"type": "ReduceLROnPlateau", "args": {"patience": 1, "mode": "min"}}, epochs=10, spe=1, metrics=pasted)
    result = S.preview(S.parse_request(body))
    vals = [1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    ref_lr, _ = torch_reference(body, lambda o: L.ReduceLROnPlateau(o, patience=1), vals)
    np.testing.assert_allclose(arrays(result)[0], ref_lr, rtol=0, atol=TOL)


def test_plateau_metrics_may_sit_inside_the_scheduler_object() -> None:
    inside = request({"type": "ReduceLROnPlateau", "args": {"patience": 0}, "metrics": [1.0, 1.0, 1.0, 1.0]}, epochs=4, spe=1)
    top = request({"type": "ReduceLROnPlateau", "args": {"patience": 0}}, epochs=4, spe=1, metrics=[1.0, 1.0, 1.0, 1.0])
    a, b = S.preview(S.parse_request(inside)), S.preview(S.parse_request(top))
    assert np.array_equal(arrays(a)[0], arrays(b)[0])
    assert arrays(a)[0][0].tolist() == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_plateau_short_metrics_repeat_the_last_with_a_warning() -> None:
    body = request({"type": "ReduceLROnPlateau", "args": {"patience": 0}}, epochs=10, spe=1, metrics=[1.0, 2.0])
    result = S.preview(S.parse_request(body))
    assert "metrics-short" in result.warning_codes


# ------------------------------------------------------------------ stepping modes and the overlay


def test_epoch_stepping_holds_the_lr_for_every_batch_of_the_epoch() -> None:
    body = request({"type": "StepLR", "args": {"step_size": 2, "gamma": 0.5}}, epochs=6, spe=4, groups=[{}])
    lr = S.preview(S.parse_request(body)).groups[0].lr
    assert lr.tolist()[:8] == [0.1] * 8
    assert lr.tolist()[8:16] == [0.05] * 8


def test_per_batch_mistake_overlay_equals_the_batch_preview() -> None:
    sched = {"type": "StepLR", "args": {"step_size": 10, "gamma": 0.5}}
    epoch = S.preview(S.parse_request(request(sched, epochs=30, spe=5, overlay_batch_mistake=True)))
    batch = S.preview(S.parse_request(request(sched, epochs=30, spe=5, step="batch")))
    assert epoch.mistake is not None
    for a, b in zip(epoch.mistake, batch.groups, strict=True):
        assert np.array_equal(a.lr, b.lr)
    assert "overlay-batch-mistake" in epoch.warning_codes
    assert epoch.groups[0].lr[-1] == pytest.approx(0.025)  # per epoch: 2 decays
    assert batch.groups[0].lr[-1] < 1e-5  # per batch by mistake: 14 decays


# ------------------------------------------------------------------ warnings that teach


def test_cyclic_on_plain_sgd_warns_that_momentum_is_switched_on() -> None:
    body = request({"type": "CyclicLR", "args": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 10}},
                   step="batch", opt={"type": "SGD", "lr": 0.1}, groups=[{}])
    result = S.preview(S.parse_request(body))
    assert "momentum-cycled" in result.warning_codes
    text = result.warnings[result.warning_codes.index("momentum-cycled")]
    assert "momentum=0" in text and "cycle_momentum=False" in text
    assert result.groups[0].momentum is not None and result.groups[0].momentum[0] == 0.9


def test_onecycle_past_total_steps_is_null_and_warned() -> None:
    body = request({"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 50}}, epochs=20, spe=3, step="batch")
    result = S.preview(S.parse_request(body)).to_dict()
    lr = result["groups"][0]["lr"]
    assert lr[50] is not None and lr[51] is None and len(lr) == 60
    assert "stepped-past-end" in result["warning_codes"]
    assert "Tried to step 51 times" in " ".join(result["warnings"])


def test_onecycle_defaults_total_steps_to_the_preview() -> None:
    result = S.preview(S.parse_request(request({"type": "OneCycleLR", "args": {"max_lr": 0.1}}, epochs=10, spe=5, step="batch")))
    assert "onecycle-total-steps" in result.warning_codes
    assert "stepped-past-end" not in result.warning_codes


def test_sequential_jump_is_warned() -> None:
    sched = {"type": "SequentialLR", "args": {"milestones": [10], "schedulers": [
        {"type": "ExponentialLR", "args": {"gamma": 0.8}}, {"type": "ConstantLR", "args": {"factor": 1.0, "total_iters": 1}}]}}
    result = S.preview(S.parse_request(request(sched, epochs=20, spe=1, groups=[{}])))
    assert "sequential-jump" in result.warning_codes
    assert "epoch 10" in result.warnings[result.warning_codes.index("sequential-jump")]


def test_per_epoch_schedule_stepped_per_batch_is_warned() -> None:
    result = S.preview(S.parse_request(request({"type": "StepLR", "args": {"step_size": 30}}, step="batch", spe=100, epochs=3)))
    assert "epoch-schedule-per-batch" in result.warning_codes
    assert "step_size" in result.warnings[result.warning_codes.index("epoch-schedule-per-batch")]


def test_cosine_shorter_than_run_is_warned() -> None:
    result = S.preview(S.parse_request(request({"type": "CosineAnnealingLR", "args": {"T_max": 10}}, epochs=30)))
    assert "cosine-rises" in result.warning_codes


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("scheduler", "field", "fragment"),
    [
        ({"type": "NoSuchLR"}, "scheduler.type", "unknown scheduler 'NoSuchLR'"),
        ({"type": "StepLR", "args": {"step_size": 3, "gama": 0.1}}, "scheduler.args.gama", "no argument 'gama'"),
        ({"type": "StepLR", "args": {}}, "scheduler.args.step_size", "needs 'step_size'"),
        ({"type": "StepLR", "args": {"step_size": 0}}, "scheduler.args.step_size", "must be >= 1"),
        ({"type": "StepLR", "args": {"step_size": 2.5}}, "scheduler.args.step_size", "must be an integer"),
        ({"type": "CosineAnnealingLR", "args": {"T_max": 0}}, "scheduler.args.T_max", "must be >= 1, got 0"),
        ({"type": "ConstantLR", "args": {"factor": 1.5}}, "scheduler.args.factor", "must be <= 1"),
        ({"type": "ExponentialLR", "args": {"gamma": "fast"}}, "scheduler.args.gamma", "must be a number"),
        ({"type": "LambdaLR", "args": {"lr_lambda": "0.95 ** epoch +"}}, "scheduler.args.lr_lambda", "syntax error"),
        ({"type": "LambdaLR", "args": {"lr_lambda": "__import__('os')"}}, "scheduler.args.lr_lambda", "unknown function '__import__'"),
        ({"type": "LambdaLR", "args": {"lr_lambda": ["1", "2"]}}, "scheduler.args.lr_lambda", "3 param groups"),
        ({"type": "CyclicLR", "args": {"base_lr": 0.1, "max_lr": [0.1, 0.2]}}, "scheduler.args.max_lr", "3 param groups"),
        ({"type": "CyclicLR", "args": {"base_lr": 0.1, "max_lr": 1, "mode": "square"}}, "scheduler.args.mode", "must be one of"),
        ({"type": "CyclicLR", "args": {"base_lr": 0.1, "max_lr": 1, "scale_fn": "x"}}, "scheduler.args.scale_fn", "cannot be set"),
        ({"type": "SequentialLR", "args": {"milestones": [5, 3], "schedulers": [{"type": "StepLR", "args": {"step_size": 1}}] * 3}},
         "scheduler.args.milestones", "strictly increasing"),
        ({"type": "SequentialLR", "args": {"milestones": [5, 8], "schedulers": [{"type": "StepLR", "args": {"step_size": 1}}] * 2}},
         "scheduler.args.milestones", "needs 1 milestone"),
        ({"type": "SequentialLR", "args": {"milestones": [5], "schedulers": [{"type": "StepLR", "args": {"step_size": 1}},
                                                                            {"type": "CosineAnnealingLR", "args": {"T_max": 0}}]}},
         "scheduler.args.schedulers[1].args.T_max", "must be >= 1"),
        ({"type": "ChainedScheduler", "args": {"schedulers": [{"type": "ReduceLROnPlateau"}]}},
         "scheduler.args.schedulers[0]", "cannot contain ReduceLROnPlateau"),
        ({"type": "LRScheduler"}, "scheduler.type", "unknown scheduler"),
    ],
)
def test_bad_scheduler_is_a_422_naming_the_field(scheduler: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        S.preview(S.parse_request(request(scheduler)))
    assert info.value.status == 422
    assert info.value.extra["field"] == field
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": "ten"}, "epochs"),
        ({"steps_per_epoch": -1}, "steps_per_epoch"),
        ({"epochs": 10_000, "steps_per_epoch": 10_000}, "epochs"),
        ({"step": "sometimes"}, "step"),
        ({"optimizer": {"type": "Adagradd"}}, "optimizer.type"),
        ({"optimizer": {"type": "SGD", "lr": -1}}, "optimizer.lr"),
        ({"optimizer": {"type": "SGD", "momentum": -0.5}}, "optimizer.momentum"),
        ({"optimizer": {"type": "Adam", "betas": [0.9]}}, "optimizer.betas"),
        ({"groups": [{}, {"lr": "x"}]}, "groups[1].lr"),
        ({"groups": [{"warmup": 3}]}, "groups[0].warmup"),
        ({"groups": "all"}, "groups"),
        ({"max_points": 1}, "max_points"),
    ],
)
def test_bad_request_fields(patch: dict[str, Any], field: str) -> None:
    body = {**request({"type": "StepLR", "args": {"step_size": 3}}), **patch}
    with pytest.raises(InvalidRequest) as info:
        S.preview(S.parse_request(body))
    assert info.value.extra["field"] == field


def test_torch_own_checks_become_422() -> None:
    # pct_start * total_steps < 1 makes torch divide by zero when it builds OneCycleLR.
    with pytest.raises(InvalidRequest) as info:
        S.preview(S.parse_request(request({"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}})))
    assert info.value.extra["field"] == "scheduler"
    with pytest.raises(InvalidRequest):  # nesterov needs momentum: torch's ValueError
        S.preview(S.parse_request(request({"type": "StepLR", "args": {"step_size": 2}},
                                          opt={"type": "SGD", "lr": 0.1, "nesterov": True}, groups=[{}])))


def test_lambda_that_divides_by_zero_mid_run_stops_there_as_torch_does() -> None:
    # torch calls the lambda at every step: a ZeroDivisionError at epoch 5 stops the run in step() number 5.
    out = S.preview(S.parse_request(request({"type": "LambdaLR", "args": {"lr_lambda": "1 / (epoch - 5)"}},
                                            epochs=10, spe=1))).to_dict()
    lr = out["groups"][0]["lr"]
    assert lr[4] == pytest.approx(0.1 / -1) and lr[5] is None
    text = out["warnings"][out["warning_codes"].index("stepped-past-end")]
    assert "call number 5" in text and "ZeroDivisionError in lr_lambda: division by zero at epoch 5" in text
    with pytest.raises(InvalidRequest) as info:  # at epoch 0 torch raises while building it: a 422
        S.preview(S.parse_request(request({"type": "LambdaLR", "args": {"lr_lambda": "1 / epoch"}})))
    assert "division by zero at epoch 0" in info.value.message


# ------------------------------------------------------------------ decimation, export


def test_values_are_never_decimated_unless_asked() -> None:
    sched = {"type": "CosineAnnealingLR", "args": {"T_max": 5000}}
    full = S.preview(S.parse_request(request(sched, epochs=5000, spe=2)))
    assert full.groups[0].lr.size == 10000 and not full.decimated
    small = S.preview(S.parse_request(request(sched, epochs=5000, spe=2, max_points=500)))
    assert small.decimated and small.groups[0].lr.size <= 500
    assert np.array_equal(small.groups[0].lr, full.groups[0].lr[small.x])
    assert small.x[0] == 0 and small.x[-1] == 9999


def test_snippet_builds_exactly_this_schedule() -> None:
    for name, scheduler, _factory in CASES:
        body = request(scheduler, epochs=12, spe=2, step="batch" if "cycl" in name else "epoch")
        spec = S.parse_request(body)
        code = S.snippet(spec)
        ast.parse(code)
        assert "optimizer.step()" in code and "scheduler.step()" in code
        # Run the exported code's construction part, then step it like the preview does.
        head = code.split("for epoch in range")[0]
        ns: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(head, "<snippet>", "exec"), ns)  # our own generated code, in a test
            sched, opt = ns["scheduler"], ns["optimizer"]
            values = []
            for _e in range(body["epochs"]):
                for _b in range(body["steps_per_epoch"]):
                    values.append(sched.get_last_lr())
                    opt.step()
                    if body["step"] == "batch":
                        sched.step()
                if body["step"] == "epoch":
                    sched.step()
        ref = np.array(values).T
        np.testing.assert_allclose(arrays(S.preview(spec))[0], ref, rtol=0, atol=TOL, err_msg=name)


def test_snippet_places_the_step_per_epoch_or_per_batch() -> None:
    sched = {"type": "StepLR", "args": {"step_size": 3}}
    per_epoch = S.snippet(S.parse_request(request(sched)))
    per_batch = S.snippet(S.parse_request(request(sched, step="batch")))
    assert "    scheduler.step()  # once per epoch" in per_epoch
    assert "        scheduler.step()  # per batch" in per_batch
    plateau = S.snippet(S.parse_request(request({"type": "ReduceLROnPlateau", "args": {}})))
    assert "scheduler.step(val_loss)" in plateau


def test_csv_has_every_step_and_exact_values() -> None:
    result = S.preview(S.parse_request(request({"type": "ExponentialLR", "args": {"gamma": 0.9}}, epochs=5, spe=2)))
    lines = S.csv_text(result).strip().split("\n")
    assert lines[0] == "step,epoch,group0_lr,group0_momentum,group1_lr,group1_momentum,group2_lr,group2_momentum"
    assert len(lines) == 11
    row = lines[-1].split(",")
    assert float(row[2]) == result.groups[0].lr[-1]
    assert row[1] == "4.5"


# ------------------------------------------------------------------ catalogue


def test_catalogue_has_every_torch_scheduler_but_the_base() -> None:
    expected = {n for n in L.__all__ if n != "LRScheduler"} | {"SWALR"}  # and swa_utils' scheduler
    assert set(S.SCHEDULERS) == expected
    data = S.catalogue()
    assert {s["name"] for s in data["schedulers"]} == expected


def test_catalogue_arguments_come_from_the_signature() -> None:
    for name, info in S.SCHEDULERS.items():
        params = inspect.signature(getattr(torch.optim.swa_utils if name == "SWALR" else L, name)).parameters
        visible = [p for p in params if p not in {"optimizer", "last_epoch"}]
        assert [a.name for a in info.args] == visible, name
        for a in info.args:
            default = params[a.name].default
            if default is inspect.Parameter.empty:
                assert a.required
            elif isinstance(default, int | float | str | bool):
                assert a.default == default, (name, a.name)
    rop = S.SCHEDULERS["ReduceLROnPlateau"]
    assert rop.arg("mode") is not None and rop.arg("mode").choices == ("min", "max")  # type: ignore[union-attr]
    assert rop.needs_metrics
    assert S.SCHEDULERS["OneCycleLR"].intent is S.Intent.BATCH
    assert S.SCHEDULERS["StepLR"].intent is S.Intent.EPOCH
    assert S.SCHEDULERS["CosineAnnealingLR"].arg("T_max").minimum == 1  # type: ignore[union-attr]
    assert S.SCHEDULERS["CyclicLR"].changes_momentum


def test_catalogue_optimizers_read_from_torch() -> None:
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        info = S.OPTIMIZERS[name]
        lr = info.arg("lr")
        assert lr is not None
        assert lr.default == inspect.signature(getattr(torch.optim, name)).parameters["lr"].default
    assert S.OPTIMIZERS["SGD"].arg("nesterov") is not None
    assert S.OPTIMIZERS["Adam"].momentum_key == "betas"
    assert S.OPTIMIZERS["SGD"].momentum_key == "momentum"
    assert S.OPTIMIZERS["AdamW"].arg("weight_decay").default == 0.01  # type: ignore[union-attr]


def test_warmup_that_hands_over_at_its_own_pace_is_not_a_jump() -> None:
    # LinearLR 0.1 -> 1 over 5 epochs then cosine: the step at the milestone is the warm-up's own step size
    sched = {"type": "SequentialLR", "args": {"milestones": [5], "schedulers": [
        {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
        {"type": "CosineAnnealingLR", "args": {"T_max": 45}}]}}
    result = S.preview(S.parse_request(request(sched, epochs=50, spe=1, groups=[{}])))
    assert "sequential-jump" not in result.warning_codes
    # the same warm-up cut short at epoch 3 jumps from 0.064 to 0.1: that is warned
    sched["args"]["milestones"] = [3]
    result = S.preview(S.parse_request(request(sched, epochs=50, spe=1, groups=[{}])))
    assert "sequential-jump" in result.warning_codes
