"""LR schedule preview speed: torchscope's exact replay vs stepping torch's own scheduler classes.

Target (issue 4): a 100,000-step, 3-group preview in <= 20 ms of server time, values identical
to stepping torch. Both are measured here in the same run, on the same machine:

* ours:  ``schedules.preview(parse_request(body))`` - validation, building the real torch
  optimizer + scheduler, the numpy replay, the cross-check of the first steps, warnings.
* torch: the same torch objects stepped 100,000 times, reading ``get_last_lr()`` and the
  momentum after every step (what a user would write to plot a schedule).

JSON encoding of the 600,000 numbers is reported separately: it is the same for any engine.

Run: .venv/bin/python benchmarks/schedules.py [--steps 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from torchscope.inspect import schedules as S

TARGET_MS = 20.0
GROUPS = [{}, {"lr": 0.01}, {"lr": 0.05, "momentum": 0.5}]


def cases(n: int) -> dict[str, dict[str, Any]]:
    return {
        "CosineAnnealingLR": {"type": "CosineAnnealingLR", "args": {"T_max": n}},
        "warmup+cosine (SequentialLR)": {"type": "SequentialLR", "args": {"milestones": [n // 20], "schedulers": [
            {"type": "LinearLR", "args": {"start_factor": 0.01, "total_iters": n // 20}},
            {"type": "CosineAnnealingLR", "args": {"T_max": n - n // 20}}]}},
        "OneCycleLR": {"type": "OneCycleLR", "args": {"max_lr": [0.1, 0.2, 0.3], "total_steps": n}},
        "CyclicLR": {"type": "CyclicLR", "args": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 2000}},
        "StepLR": {"type": "StepLR", "args": {"step_size": 1000, "gamma": 0.95}},
        "ExponentialLR": {"type": "ExponentialLR", "args": {"gamma": 0.99995}},
        "CosineAnnealingWarmRestarts": {"type": "CosineAnnealingWarmRestarts", "args": {"T_0": 1000, "T_mult": 2}},
        "LambdaLR (expression)": {"type": "LambdaLR", "args": {"lr_lambda": f"0.5 * (1 + cos(pi * epoch / {n}))"}},
        "CosineAnnealingLR eta_min>0": {"type": "CosineAnnealingLR", "args": {"T_max": n, "eta_min": 1e-5}},
    }


def best_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000, out


def step_torch(body: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    spec = S.parse_request(body)
    opt = S.build_optimizer(spec)
    sched = S.build_scheduler(spec.scheduler, opt, spec.scheduler_steps)
    lrs, moms = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(spec.scheduler_steps):
            lrs.append(sched.get_last_lr())
            moms.append([g["momentum"] for g in opt.param_groups])
            sched.step()
    return np.array(lrs, dtype=np.float64).T, np.array(moms, dtype=np.float64).T


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.steps
    S.warm_up()
    print(f"{n:,} optimizer steps x {len(GROUPS)} groups, scheduler stepped per batch; best of {args.repeat}")
    print(f"{'scheduler':32s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>7s} {'max |diff|':>11s} {'bits':>6s} {'json ms':>8s} {'b64 ms':>7s}")
    failures = []
    for name, sched in cases(n).items():
        body = {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "groups": GROUPS, "scheduler": sched,
                "epochs": n // 1000, "steps_per_epoch": 1000, "step": "batch"}
        ours_ms, result = best_ms(lambda b=body: S.preview(S.parse_request(b)), args.repeat)
        torch_ms, (ref_lr, ref_m) = best_ms(lambda b=body: step_torch(b), 1)
        lr = np.stack([g.lr for g in result.groups])
        mom = np.stack([g.momentum for g in result.groups])
        diff = max(float(np.max(np.abs(lr - ref_lr))), float(np.max(np.abs(mom - ref_m))))
        same_bits = np.array_equal(lr, ref_lr) and np.array_equal(mom, ref_m)
        json_ms, _ = best_ms(lambda r=result: S.dumps(r.to_dict("raw")), 1)
        b64_ms, _ = best_ms(lambda r=result: json.dumps(r.to_dict("b64"), separators=(",", ":")), 3)
        print(f"{name:32s} {ours_ms:9.2f} {torch_ms:9.1f} {torch_ms / ours_ms:6.0f}x {diff:11.1e} "
              f"{'equal' if same_bits else 'ulp':>6s} {json_ms:8.1f} {b64_ms:7.1f}  [{result.engine}]")
        assert diff <= 1e-12, f"{name}: preview differs from stepping torch by {diff}"
        if ours_ms > TARGET_MS:
            failures.append(f"{name}: {ours_ms:.1f} ms > {TARGET_MS} ms")
    print("\nours = parse + build torch objects + replay + cross-check + warnings (server time before encoding);")
    print("json/b64 = encoding the answer as JSON numbers / as base64 float64 (encoding='b64').")
    if failures:
        print("over the target:", "; ".join(failures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
