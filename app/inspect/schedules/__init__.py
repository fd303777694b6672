"""LR schedule lab: the scheduler catalogue, building real torch schedulers, and exact previews.

The catalogue is read from ``torch.optim.lr_scheduler.__all__`` (and ``swa_utils.SWALR``) and
every ``torch.optim`` optimizer with ``inspect.signature``; ``OVERRIDES`` adds what a signature
cannot say (ranges, per-batch vs per-epoch intent, per-group lists).

A preview answers: which learning rate (and momentum / ``betas[0]``) does optimizer step
``i`` use, for each param group? We always build the real torch optimizer and scheduler
(so torch validates the arguments), then compute the series one of two ways:

* ``exact``: numpy replays of torch's own update rules, bit-identical to stepping torch.
  Recursive ("chainable") schedulers multiply the previous lr by a factor each step;
  ``np.cumprod`` performs exactly the same sequence of IEEE multiplications. Schedulers that
  are a function of the step (CyclicLR, OneCycleLR, warm restarts, LambdaLR) are evaluated
  with the same operations in the same order, and every ``cos``/``exp``/``**`` goes through
  libm as Python's does (``torchscope.inspect.exactmath``; numpy's own differ by an ulp).
  A lambda is the lab's expression, which equals the Python lambda on a float epoch (torch
  passes an int: the same values unless integer arithmetic passes 2**53). The first steps are
  cross-checked against the real torch object; any mismatch falls back to stepping.
* ``torch``: step the real scheduler and read the groups' lr (ReduceLROnPlateau, SWALR and
  the SWA loop, compositions the replay does not cover).

Where torch raises in ``scheduler.step()`` (OneCycleLR past ``total_steps``, CyclicLR's
``2.0 ** 1024``, a lambda dividing by zero) both engines say at which step, with torch's error,
and give no values from there on; a training loop would stop there.

``closed_form`` gives torch's textbook closed forms; tests show how close they are to
stepping (they are not what torch does: its recursive forms drift by a few ulps).

The package, one job per file: ``catalogue`` (what torch offers), ``requests`` (JSON -> specs),
``stepping`` (real torch objects), ``replay_leaves`` and ``replay`` (the exact numpy engine),
``preview`` (the answer), ``warnings`` (pitfalls explained), ``resume`` (a checkpointed
scheduler continued), ``encoding`` and ``export`` (wire formats, snippet, CSV).
"""

from __future__ import annotations

from torchscope.inspect.schedules.catalogue import (
    MAX_GROUPS,
    MAX_STEPS,
    MAX_TORCH_STEPS,
    METRIC_SHAPES,
    OPTIMIZERS,
    SCHEDULERS,
    ArgKind,
    Intent,
    StepMode,
    catalogue,
    warm_up,
)
from torchscope.inspect.schedules.encoding import dumps
from torchscope.inspect.schedules.export import csv_text, snippet
from torchscope.inspect.schedules.preview import Preview, compute_series, model_preview, preview
from torchscope.inspect.schedules.replay import closed_form, replay
from torchscope.inspect.schedules.requests import (
    PreviewSpec,
    SchedulerSpec,
    parse_request,
    parse_scheduler,
    synthetic_metrics,
)
from torchscope.inspect.schedules.resume import (
    Resumed,
    identify,
    resumables,
    resume,
    resume_checkpoint,
)
from torchscope.inspect.schedules.stepping import build_optimizer, build_scheduler, step_torch

__all__ = [
    "MAX_GROUPS",
    "MAX_STEPS",
    "MAX_TORCH_STEPS",
    "METRIC_SHAPES",
    "OPTIMIZERS",
    "SCHEDULERS",
    "ArgKind",
    "Intent",
    "Preview",
    "PreviewSpec",
    "Resumed",
    "SchedulerSpec",
    "StepMode",
    "build_optimizer",
    "build_scheduler",
    "catalogue",
    "closed_form",
    "compute_series",
    "csv_text",
    "dumps",
    "identify",
    "model_preview",
    "parse_request",
    "parse_scheduler",
    "preview",
    "replay",
    "resumables",
    "resume",
    "resume_checkpoint",
    "snippet",
    "step_torch",
    "synthetic_metrics",
    "warm_up",
]
