"""Issue 12: where torch raises, long runs, every optimizer, SWA, per-group lists, repeated milestones.

The reference is always torch itself, built by hand here and stepped like a training loop
until it raises; values are compared to 1e-12 relative, or bit for bit where promised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L
from torch.optim import swa_utils

from torchscope.inspect import schedules as S
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.schedules.stepping import Series

Factory = Callable[[torch.optim.Optimizer], Any]
REL = 1e-12


def stepped(opt_type: str, groups: list[dict[str, Any]], factory: Factory, n: int,
            step: Callable[[Any, int], None] | None = None, **opt_args: Any) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """torch by hand: lr (and momentum / betas[0]) after k scheduler steps, k = 0..n-1; NaN from the raise on."""
    params = [{"params": [torch.zeros(1, 1, requires_grad=True)], **g} for g in groups]
    opt = getattr(torch.optim, opt_type)(params, **{"lr": 0.1, **opt_args})
    key = "betas" if "betas" in opt.defaults else "momentum" if "momentum" in opt.defaults else None
    lr = np.full((len(groups), n), np.nan)
    mom = None if key is None else np.full((len(groups), n), np.nan)
    crash = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = factory(opt)
        for k in range(n):
            if k:
                try:
                    (step or (lambda s, _k: s.step()))(sched, k)
                except Exception:  # the reference records where torch raises, whatever it raises
                    crash = k
                    break
            lr[:, k] = [float(g["lr"]) for g in opt.param_groups]
            if mom is not None:
                mom[:, k] = [float(g[key][0] if key == "betas" else g[key]) for g in opt.param_groups]
    return lr, mom, crash


def series(body: dict[str, Any]) -> tuple[Series, torch.optim.Optimizer]:
    spec = S.parse_request(body)
    return S.compute_series(spec, spec.scheduler_steps)


def body_for(scheduler: dict[str, Any], n: int, *, opt: dict[str, Any] | None = None,
             groups: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"optimizer": opt or {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "groups": groups or [{}],
            "scheduler": scheduler, "epochs": n, "steps_per_epoch": 1, "step": "epoch", **extra}


def assert_same(ours: np.ndarray, ref: np.ndarray, *, exact: bool = False) -> None:
    assert ours.shape == ref.shape
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "null where torch has no value"
    ok = ~np.isnan(ref)
    if exact:
        assert np.array_equal(ours[ok], ref[ok])
    else:
        np.testing.assert_allclose(ours[ok], ref[ok], rtol=REL, atol=0)


# ------------------------------------------------------------------ where torch raises


OVERFLOWS: list[tuple[str, dict[str, Any], Factory, int, int]] = [
    # triangular2 with a 2-step cycle: 2.0 ** 1024 at cycle 1025, i.e. step 2048
    ("cyclic-triangular2", {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 1, "mode": "triangular2"}},
     lambda o: L.CyclicLR(o, 0.01, 0.1, 1, mode="triangular2"), 5000, 2048),
    # exp_range with gamma > 1: gamma ** 71333 overflows
    ("cyclic-exp-range", {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2000, "mode": "exp_range", "gamma": 1.01}},
     lambda o: L.CyclicLR(o, 0.01, 0.1, 2000, mode="exp_range", gamma=1.01), 100_000, 71_333),
    # a repeated milestone decays by gamma ** 2, which overflows for a huge gamma
    ("multistep-pow", {"type": "MultiStepLR", "args": {"milestones": [3, 3], "gamma": 1e200}},
     lambda o: L.MultiStepLR(o, [3, 3], gamma=1e200), 10, 3),
    ("lambda-domain", {"type": "LambdaLR", "args": {"lr_lambda": "math.sqrt(30 - epoch)"}},
     lambda o: L.LambdaLR(o, lambda e: math.sqrt(30 - e)), 50, 31),
    ("multiplicative-overflow", {"type": "MultiplicativeLR", "args": {"lr_lambda": "math.exp(epoch)"}},
     lambda o: L.MultiplicativeLR(o, lambda e: math.exp(e)), 1000, 710),
    ("chained-multistep", {"type": "ChainedScheduler", "args": {"schedulers": [
        {"type": "ExponentialLR", "args": {"gamma": 0.9}}, {"type": "MultiStepLR", "args": {"milestones": [7, 7, 7], "gamma": 1e120}}]}},
     lambda o: L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.MultiStepLR(o, [7, 7, 7], gamma=1e120)]), 20, 7),
    ("sequential-lambda", {"type": "SequentialLR", "args": {"milestones": [5], "schedulers": [
        {"type": "ExponentialLR", "args": {"gamma": 0.9}}, {"type": "LambdaLR", "args": {"lr_lambda": "1 / (epoch - 3)"}}]}},
     lambda o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.LambdaLR(o, lambda e: 1 / (e - 3))], [5]), 20, 8),
    ("onecycle-past-end", {"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 30}},
     lambda o: L.OneCycleLR(o, 0.1, total_steps=30), 40, 31),
]


@pytest.mark.parametrize(("name", "scheduler", "factory", "n", "raises_at"), OVERFLOWS, ids=[c[0] for c in OVERFLOWS])
def test_torch_raises_at_the_same_step_for_every_scheduler(name: str, scheduler: dict[str, Any], factory: Factory,
                                                            n: int, raises_at: int) -> None:
    ref_lr, ref_mom, crash = stepped("SGD", [{}], factory, n, momentum=0.9)
    assert crash == raises_at  # the case is what it claims to be
    got, _ = series(body_for(scheduler, n))
    assert got.crash_at == raises_at and got.crash is not None
    assert_same(got.lr, ref_lr)
    assert got.momentum is not None and ref_mom is not None
    assert_same(got.momentum, ref_mom)
    # the stepping engine says the same: same step, same text
    spec = S.parse_request(body_for(scheduler, n))
    if n <= 10_000:
        by_torch, _ = S.compute_series(spec, n, use_replay=False)
        assert (by_torch.crash_at, by_torch.crash) == (got.crash_at, got.crash)
    # and the preview says so in one wording, with no value from there on
    out = S.preview(spec)
    text = out.warnings[out.warning_codes.index("stepped-past-end")]
    assert f"scheduler.step() call number {raises_at} (at the end of epoch {raises_at - 1})" in text
    lr = out.groups[0].lr
    assert np.isnan(lr[raises_at:]).all() and not np.isnan(lr[:raises_at]).any()


def test_cyclic_overflow_text_is_torch_s_and_explains_why() -> None:
    out = S.preview(S.parse_request(body_for(OVERFLOWS[0][1], 3000))).to_dict()
    text = out["warnings"][out["warning_codes"].index("stepped-past-end")]
    assert "OverflowError: (34, 'Numerical result out of range')" in text and "1024 cycles" in text


def test_exp_range_that_shrinks_runs_100k_steps_like_torch() -> None:
    sched = {"type": "CyclicLR", "args": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 500, "mode": "exp_range", "gamma": 0.9999}}
    ref_lr, ref_mom, crash = stepped("SGD", [{}], lambda o: L.CyclicLR(o, 0.001, 0.1, 500, mode="exp_range", gamma=0.9999),
                                     100_000, momentum=0.9)
    got, _ = series(body_for(sched, 100_000))
    assert crash is None and got.crash is None and got.engine == "exact"
    assert_same(got.lr, ref_lr, exact=True)
    assert got.momentum is not None and ref_mom is not None
    assert_same(got.momentum, ref_mom, exact=True)


# ------------------------------------------------------------------ long runs, bit for bit


LONG: list[tuple[str, dict[str, Any], Factory]] = [
    ("cosine-eta", {"type": "CosineAnnealingLR", "args": {"T_max": 7000, "eta_min": 1e-4}}, lambda o: L.CosineAnnealingLR(o, 7000, 1e-4)),
    ("warm-restarts", {"type": "CosineAnnealingWarmRestarts", "args": {"T_0": 300, "T_mult": 2}},
     lambda o: L.CosineAnnealingWarmRestarts(o, 300, 2)),
    ("onecycle", {"type": "OneCycleLR", "args": {"max_lr": 0.3, "total_steps": 100_000, "three_phase": True}},
     lambda o: L.OneCycleLR(o, 0.3, total_steps=100_000, three_phase=True)),
    ("lambda-warmup-cosine", {"type": "LambdaLR", "args": {
        "lr_lambda": "(epoch + 1) / 2000 if epoch < 2000 else 0.5 * (1 + math.cos(math.pi * (epoch - 2000) / 98000))"}},
     lambda o: L.LambdaLR(o, lambda e: (e + 1) / 2000 if e < 2000 else 0.5 * (1 + math.cos(math.pi * (e - 2000) / 98000)))),
    ("lambda-floor-div", {"type": "LambdaLR", "args": {"lr_lambda": "0.5 ** (epoch // 30000) * math.exp(-epoch / 1e6)"}},
     lambda o: L.LambdaLR(o, lambda e: 0.5 ** (e // 30000) * math.exp(-e / 1e6))),
    ("sequential", {"type": "SequentialLR", "args": {"milestones": [1000], "schedulers": [
        {"type": "LinearLR", "args": {"start_factor": 0.01, "total_iters": 1000}},
        {"type": "ExponentialLR", "args": {"gamma": 0.99997}}]}},
     lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.01, total_iters=1000), L.ExponentialLR(o, 0.99997)], [1000])),
]


@pytest.mark.parametrize(("name", "scheduler", "factory"), LONG, ids=[c[0] for c in LONG])
def test_100k_steps_are_bit_identical_to_stepping_torch(name: str, scheduler: dict[str, Any], factory: Factory) -> None:
    groups = [{}, {"lr": 0.037}]
    ref_lr, _, crash = stepped("SGD", groups, factory, 100_000, lr=0.1)
    got, _ = series(body_for(scheduler, 100_000, opt={"type": "SGD", "lr": 0.1}, groups=groups))
    assert crash is None and got.engine == "exact"
    assert_same(got.lr, ref_lr, exact=True)


# ------------------------------------------------------------------ MultiStepLR milestones as torch takes them


def test_unsorted_and_repeated_milestones_decay_as_torch_s_counter() -> None:
    sched = {"type": "MultiStepLR", "args": {"milestones": [30, 10, 30, 0], "gamma": 0.5}}
    ref, _, _ = stepped("SGD", [{}], lambda o: L.MultiStepLR(o, [30, 10, 30, 0], gamma=0.5), 40)
    got, _ = series(body_for(sched, 40))
    assert_same(got.lr, ref, exact=True)
    assert got.lr[0, 29] / got.lr[0, 30] == pytest.approx(4.0)  # decayed twice at 30


# ------------------------------------------------------------------ every optimizer


def _optimizer_cases() -> list[str]:
    return [n for n in S.OPTIMIZERS if n != "LBFGS"]


def test_every_torch_optimizer_is_in_the_lab() -> None:
    exported = {n for n in torch.optim.__all__ if isinstance(getattr(torch.optim, n), type)
                and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer"}
    assert set(S.OPTIMIZERS) == exported
    assert S.OPTIMIZERS["NAdam"].momentum_key == "betas" and S.OPTIMIZERS["Adagrad"].momentum_key is None
    assert S.OPTIMIZERS["RMSprop"].momentum_key == "momentum"


@pytest.mark.parametrize("opt_type", _optimizer_cases())
def test_every_optimizer_previews_like_torch_and_plots_its_momentum(opt_type: str) -> None:
    info = S.OPTIMIZERS[opt_type]
    cyclic = info.momentum_key is not None
    sched = ({"type": "OneCycleLR", "args": {"max_lr": [0.1, 0.2], "total_steps": 60}} if cyclic
             else {"type": "CosineAnnealingLR", "args": {"T_max": 60}})
    factory: Factory = ((lambda o: L.OneCycleLR(o, [0.1, 0.2], total_steps=60)) if cyclic
                        else (lambda o: L.CosineAnnealingLR(o, 60)))
    groups = [{}, {"lr": 0.05}] if opt_type != "LBFGS" else [{}]
    ref_lr, ref_mom, _ = stepped(opt_type, groups, factory, 60, lr=0.01)
    got, _ = series(body_for(sched, 60, opt={"type": opt_type, "lr": 0.01}, groups=groups))
    assert_same(got.lr, ref_lr, exact=True)
    if cyclic:
        assert got.momentum is not None and ref_mom is not None
        assert_same(got.momentum, ref_mom, exact=True)
        assert np.ptp(got.momentum) > 0  # cycled, and drawn
    else:
        assert got.momentum is None


def test_lbfgs_takes_one_group_and_says_so_otherwise() -> None:
    got, _ = series(body_for({"type": "StepLR", "args": {"step_size": 3}}, 9, opt={"type": "LBFGS", "lr": 1.0}))
    assert got.lr[0, -1] == pytest.approx(1.0 * 0.1**2)
    with pytest.raises(InvalidRequest, match="torch rejects it"):
        series(body_for({"type": "StepLR", "args": {"step_size": 3}}, 9, opt={"type": "LBFGS"}, groups=[{}, {}]))


# ------------------------------------------------------------------ SWALR and the SWA loop


def test_swalr_alone_equals_torch() -> None:
    sched = {"type": "SWALR", "args": {"swa_lr": [0.05, 0.01], "anneal_epochs": 7, "anneal_strategy": "linear"}}
    ref, _, _ = stepped("SGD", [{}, {"lr": 0.3}], lambda o: swa_utils.SWALR(o, [0.05, 0.01], 7, "linear"), 20, lr=0.1)
    got, _ = series(body_for(sched, 20, groups=[{}, {"lr": 0.3}]))
    assert_same(got.lr, ref, exact=True)


def test_swa_loop_as_torch_docs_write_it_100k_steps() -> None:
    # for epoch in ...: ...; if epoch > swa_start: swa_scheduler.step() else: scheduler.step()
    n, start = 100_000, 74_999
    body = body_for({"type": "CosineAnnealingLR", "args": {"T_max": 75_000}}, n,
                    swa={"start": start, "scheduler": {"type": "SWALR", "args": {"swa_lr": 0.05, "anneal_epochs": 5}}})

    def factory(o: torch.optim.Optimizer) -> Any:
        return (L.CosineAnnealingLR(o, 75_000), swa_utils.SWALR(o, swa_lr=0.05, anneal_epochs=5))

    def step(pair: Any, k: int) -> None:
        pair[1].step() if k - 1 > start else pair[0].step()

    ref, _, _ = stepped("SGD", [{}], factory, n, step=step, lr=0.1, momentum=0.9)
    got, _ = series(body)
    assert got.engine == "torch"
    assert_same(got.lr, ref, exact=True)
    assert got.lr[0, -1] == 0.05 and got.lr[0, start + 3] != got.lr[0, start + 4]


# ------------------------------------------------------------------ per-group lists and momentum as torch takes them


def test_per_group_momentum_lists_and_momentum_above_one() -> None:
    groups = [{}, {"lr": 0.2}]
    sched = {"type": "CyclicLR", "args": {"base_lr": [0.01, 0.02], "max_lr": [0.1, 0.2], "step_size_up": 5,
                                          "base_momentum": [0.8, 0.85], "max_momentum": [0.9, 1.05]}}
    ref_lr, ref_mom, _ = stepped("SGD", groups, lambda o: L.CyclicLR(o, [0.01, 0.02], [0.1, 0.2], 5, base_momentum=[0.8, 0.85],
                                                                       max_momentum=[0.9, 1.05]), 30, lr=0.1, momentum=0.9)
    body = body_for(sched, 30, groups=groups, step="batch")
    got, _ = series(body)
    assert_same(got.lr, ref_lr, exact=True)
    assert got.momentum is not None and ref_mom is not None
    assert_same(got.momentum, ref_mom, exact=True)
    out = S.preview(S.parse_request(body))
    text = out.warnings[out.warning_codes.index("momentum-above-one")]
    assert "scheduler.args.max_momentum[1]=1.05" in text
    plain = S.preview(S.parse_request(body_for({"type": "StepLR", "args": {"step_size": 2}}, 5,
                                               opt={"type": "SGD", "lr": 0.1, "momentum": 1.2})))
    assert "momentum-above-one" in plain.warning_codes
    with pytest.raises(InvalidRequest) as info:
        S.parse_request(body_for(sched | {"args": {**sched["args"], "base_momentum": [0.8]}}, 5, groups=groups))
    assert info.value.extra["field"] == "scheduler.args.base_momentum"


def test_onecycle_per_group_max_lr_and_momentum() -> None:
    groups = [{}, {"lr": 0.5}, {"lr": 0.01}]
    ref_lr, ref_mom, _ = stepped("Adam", groups, lambda o: L.OneCycleLR(o, [0.1, 0.2, 0.3], total_steps=50, base_momentum=[0.8, 0.85, 0.9],
                                                                          max_momentum=0.95), 50, lr=0.001)
    sched = {"type": "OneCycleLR", "args": {"max_lr": [0.1, 0.2, 0.3], "total_steps": 50, "base_momentum": [0.8, 0.85, 0.9]}}
    got, _ = series(body_for(sched, 50, opt={"type": "Adam", "lr": 0.001}, groups=groups))
    assert_same(got.lr, ref_lr, exact=True)
    assert got.momentum is not None and ref_mom is not None
    assert_same(got.momentum, ref_mom, exact=True)


# ------------------------------------------------------------------ the sweep: extreme arguments, replay == torch


EXTREMES: list[dict[str, Any]] = [
    {"type": "StepLR", "args": {"step_size": 1, "gamma": 1e10}},
    {"type": "StepLR", "args": {"step_size": 2, "gamma": 0.0}},
    {"type": "ExponentialLR", "args": {"gamma": 1e5}},
    {"type": "ExponentialLR", "args": {"gamma": 1e-300}},
    {"type": "MultiStepLR", "args": {"milestones": [5, 5, 9], "gamma": 1e300}},
    {"type": "ConstantLR", "args": {"factor": 1e-300, "total_iters": 7}},
    {"type": "LinearLR", "args": {"start_factor": 1e-300, "end_factor": 1.0, "total_iters": 1000}},
    {"type": "PolynomialLR", "args": {"total_iters": 500, "power": 1e6}},
    {"type": "CosineAnnealingLR", "args": {"T_max": 1, "eta_min": 1e300}},
    {"type": "CosineAnnealingWarmRestarts", "args": {"T_0": 1, "T_mult": 1000, "eta_min": 1e-300}},
    {"type": "CyclicLR", "args": {"base_lr": 1e-300, "max_lr": 1e300, "step_size_up": 1, "mode": "triangular2"}},
    {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "exp_range", "gamma": 1e10}},
    {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "exp_range", "gamma": 1e-10}},
    {"type": "OneCycleLR", "args": {"max_lr": 1.0, "total_steps": 2000, "div_factor": 1e-300, "final_div_factor": 1e-300}},
    {"type": "OneCycleLR", "args": {"max_lr": 1.0, "total_steps": 2000, "pct_start": 1.0}},
    {"type": "LambdaLR", "args": {"lr_lambda": "10.0 ** epoch"}},
    {"type": "LambdaLR", "args": {"lr_lambda": "1e300 * epoch * 1e300"}},
    {"type": "MultiplicativeLR", "args": {"lr_lambda": "1e300"}},
    {"type": "MultiplicativeLR", "args": {"lr_lambda": "1 / (epoch % 1000)"}},
    {"type": "SequentialLR", "args": {"milestones": [3], "schedulers": [
        {"type": "ExponentialLR", "args": {"gamma": 1e200}}, {"type": "MultiStepLR", "args": {"milestones": [2, 2], "gamma": 1e300}}]}},
]


@pytest.mark.parametrize("scheduler", EXTREMES, ids=[f"{s['type']}-{i}" for i, s in enumerate(EXTREMES)])
def test_sweep_extreme_arguments_replay_equals_stepping_torch(scheduler: dict[str, Any]) -> None:
    spec = S.parse_request(body_for(scheduler, 3000, groups=[{}, {"lr": 1e-3}]))
    replayed, _ = S.compute_series(spec, 3000)
    by_torch, _ = S.compute_series(spec, 3000, use_replay=False)
    assert replayed.engine == "exact"
    assert (replayed.crash_at, replayed.crash) == (by_torch.crash_at, by_torch.crash)
    same = (replayed.lr == by_torch.lr) | (np.isnan(replayed.lr) & np.isnan(by_torch.lr))
    assert same.all(), np.argwhere(~same)[:3]
    S.preview(spec).to_dict()  # and it encodes (inf and NaN as null), no exception
