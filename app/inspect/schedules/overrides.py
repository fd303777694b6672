"""What a signature cannot say about torch's schedulers and optimizers: ranges, intent, per-group lists.

Read by ``catalogue``, which takes everything else from ``inspect.signature``.
"""

from __future__ import annotations

from typing import Any

from torch.optim import swa_utils

# What a signature cannot say. Keys: scheduler -> {"intent", "args": {arg: {...}}}.
# Ranges mirror the checks torch does (or should do: T_max=0 divides by zero at the first step).
_NONNEG: dict[str, Any] = {"minimum": 0}
_POS_INT: dict[str, Any] = {"minimum": 1}
_UNIT: dict[str, Any] = {"minimum": 0, "maximum": 1}
# A float torch also accepts as one value per param group (its _format_param).
_PER_GROUP: dict[str, Any] = {"kind": "float_or_list", "per_group": True}
OVERRIDES: dict[str, dict[str, Any]] = {
    "LambdaLR": {
        "intent": "epoch",
        "args": {"lr_lambda": {"example": "0.95 ** epoch", "help": "factor of each group's initial lr at epoch"}},
    },
    "MultiplicativeLR": {
        "intent": "epoch",
        "args": {"lr_lambda": {"example": "0.95", "help": "factor applied to the current lr at each step"}},
    },
    "StepLR": {"intent": "epoch", "args": {"step_size": {**_POS_INT, "example": 10}, "gamma": _NONNEG}},
    "MultiStepLR": {
        "intent": "epoch",
        # torch keeps a Counter: any order, and a milestone listed twice decays twice
        "args": {"milestones": {"minimum": 0, "example": [30, 60], "help": "steps at which to decay (a repeat decays twice)"},
                 "gamma": _NONNEG},
    },
    "ConstantLR": {
        "intent": "epoch",
        "args": {"factor": {"minimum": 0, "exclusive_minimum": True, "maximum": 1}, "total_iters": _NONNEG},
    },
    "LinearLR": {
        "intent": "either",
        "args": {
            "start_factor": {"minimum": 0, "exclusive_minimum": True, "maximum": 1},
            "end_factor": _UNIT,
            "total_iters": _POS_INT,
        },
    },
    "ExponentialLR": {
        "intent": "epoch",
        "args": {"gamma": {"minimum": 0, "exclusive_minimum": True, "example": 0.95}},
    },
    "SequentialLR": {
        "intent": "either",
        "args": {
            "schedulers": {
                "example": [
                    {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
                    {"type": "CosineAnnealingLR", "args": {"T_max": 45}},
                ]
            },
            "milestones": {"minimum": 1, "increasing": True, "example": [5],
                           "help": "step at which each next scheduler takes over"},
        },
    },
    "CosineAnnealingLR": {
        "intent": "epoch",
        "args": {"T_max": {**_POS_INT, "example": 50, "help": "half period, in scheduler steps"}, "eta_min": _NONNEG},
    },
    "ChainedScheduler": {
        "intent": "either",
        "args": {
            "schedulers": {
                "example": [
                    {"type": "ConstantLR", "args": {"factor": 0.5, "total_iters": 5}},
                    {"type": "ExponentialLR", "args": {"gamma": 0.95}},
                ]
            }
        },
    },
    "ReduceLROnPlateau": {
        "intent": "epoch",
        "args": {
            "factor": {"minimum": 0, "maximum": 1, "exclusive_maximum": True},
            "patience": _NONNEG,
            "threshold": _NONNEG,
            "cooldown": _NONNEG,
            "min_lr": _NONNEG,
            "eps": _NONNEG,
        },
    },
    "CyclicLR": {
        "intent": "batch",
        "args": {
            "base_lr": {"minimum": 0, "example": 0.001},
            "max_lr": {"minimum": 0, "example": 0.1},
            "step_size_up": _POS_INT,
            "step_size_down": _POS_INT,
            "gamma": {"minimum": 0, "exclusive_minimum": True},
            # torch formats these per group (_format_param) and checks no range: above 1 is warned, not refused
            "base_momentum": _PER_GROUP,
            "max_momentum": _PER_GROUP,
        },
    },
    "CosineAnnealingWarmRestarts": {
        "intent": "either",
        "args": {"T_0": {**_POS_INT, "example": 10}, "T_mult": _POS_INT, "eta_min": _NONNEG},
    },
    "OneCycleLR": {
        "intent": "batch",
        "args": {
            "max_lr": {"minimum": 0, "exclusive_minimum": True, "example": 0.1},
            "total_steps": {**_POS_INT, "help": "defaults to the number of scheduler steps in this preview"},
            "epochs": _POS_INT,
            "steps_per_epoch": _POS_INT,
            "pct_start": _UNIT,
            "div_factor": {"minimum": 0, "exclusive_minimum": True},
            "final_div_factor": {"minimum": 0, "exclusive_minimum": True},
        },
    },
    "PolynomialLR": {"intent": "epoch", "args": {"total_iters": _POS_INT, "power": _NONNEG}},
    "SWALR": {
        "intent": "epoch",
        "args": {
            "swa_lr": {**_PER_GROUP, "minimum": 0, "example": 0.05, "help": "the lr SWA anneals to"},
            "anneal_epochs": {"minimum": 0, "help": "scheduler steps to reach swa_lr (0: at once)"},
        },
    },
}
# Schedulers that live outside torch.optim.lr_scheduler (read from their own module, like the rest).
EXTRA_SCHEDULERS: dict[str, Any] = {"SWALR": swa_utils}
OPTIMIZER_OVERRIDES: dict[str, dict[str, Any]] = {
    "lr": {"minimum": 0},
    "momentum": _NONNEG,  # torch checks >= 0 only; above 1 is warned
    "dampening": _UNIT,
    "weight_decay": _NONNEG,
    "eps": _NONNEG,
    "betas": {"minimum": 0, "maximum": 1, "exclusive_maximum": True},  # Adam & co. check 0 <= beta < 1
}
# Per optimizer, where one name means different things (RMSprop's alpha is a decay, ASGD's a power).
OPTIMIZER_ARG_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {"RMSprop": {"alpha": _UNIT}}
