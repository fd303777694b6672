"""Warnings that explain a pitfall of the previewed schedule, each with a stable code."""

from __future__ import annotations

import numpy as np
import torch

from torchscope.inspect.schedules.catalogue import MOMENTUM_SCHEDULERS, ArgKind, Intent, StepMode
from torchscope.inspect.schedules.replay_leaves import one_cycle_total
from torchscope.inspect.schedules.requests import PreviewSpec, SchedulerSpec
from torchscope.inspect.schedules.stepping import Series


def _walk(spec: SchedulerSpec) -> list[SchedulerSpec]:
    out = [spec]
    for c in spec.children:
        out.extend(_walk(c))
    return out


def crash_place(k: int, step: StepMode, steps_per_epoch: int) -> str:
    """Where in the training loop scheduler.step() call number ``k`` happens."""
    if step is StepMode.EPOCH:
        return f"torch raises in scheduler.step() call number {k} (at the end of epoch {k - 1})"
    epoch, batch = divmod(k - 1, steps_per_epoch)
    return f"torch raises in scheduler.step() call number {k} (after optimizer step {k - 1}: epoch {epoch}, batch {batch})"


def _crash_hint(spec: PreviewSpec, crash: str) -> str:
    types = {s.type: s for s in _walk(spec.scheduler)}
    if "Tried to step" in crash:
        return " For OneCycleLR set total_steps to epochs * steps_per_epoch and step it per batch."
    if "lr_lambda" in crash:
        return " Your lr_lambda raises at that epoch, as the same Python lambda would."
    cyc = types.get("CyclicLR")
    if "OverflowError" in crash and cyc is not None:
        if cyc.args.get("mode") == "triangular2":
            return (" triangular2 halves the amplitude every cycle: its scale 1 / 2.0 ** (cycle - 1) overflows after "
                    "1024 cycles. Use longer cycles (step_size_up) or another mode.")
        return " exp_range scales by gamma ** iteration, which overflows for gamma > 1 over a long run."
    return ""


def _momenta(spec: PreviewSpec) -> list[tuple[str, float]]:
    """Every momentum the user set (optimizer, groups, cycling schedulers), by where it was set."""
    out: list[tuple[str, float]] = []
    if spec.optimizer.info.momentum_key == "momentum":
        if "momentum" in spec.optimizer.args:
            out.append(("optimizer.momentum", float(spec.optimizer.args["momentum"])))
        out += [(f"groups[{i}].momentum", float(g["momentum"])) for i, g in enumerate(spec.groups) if "momentum" in g]
    for s in _walk(spec.scheduler):
        if s.type in MOMENTUM_SCHEDULERS and s.args.get("cycle_momentum", True):
            for name in ("base_momentum", "max_momentum"):
                v = s.args.get(name)
                for j, x in enumerate(v if isinstance(v, list) else [] if v is None else [v]):
                    out.append((f"{s.field}.args.{name}" + (f"[{j}]" if isinstance(v, list) else ""), float(x)))
    return out


def _per_epoch_note(spec: PreviewSpec, n: int) -> str:
    """What stepping a per-batch scheduler once per epoch does to this schedule (it does not always 'barely move')."""
    s, spe = spec.scheduler, spec.steps_per_epoch
    if s.type == "OneCycleLR":
        total = one_cycle_total(s.args, n)
        covered = min(1.0, n / total)
        if covered >= 0.999:
            return (f"OneCycleLR is stepped once per epoch here, with total_steps = {total}: the whole cycle runs over "
                    f"the {spec.epochs} epochs, but the lr changes only between epochs, {spe} batches at a time. It is "
                    f"usually stepped after every batch, with total_steps = epochs * steps_per_epoch = {spec.total_steps}.")
        return (f"OneCycleLR is stepped once per epoch here: {n} of its total_steps = {total} steps, so it barely moves "
                f"({covered:.0%} of the cycle). Step it after every batch (optimizer.step()).")
    if s.type == "CyclicLR":
        up = s.args.get("step_size_up", 2000)
        period = up + (s.args.get("step_size_down") or up)
        cycles = n / period
        if cycles < 1:
            return (f"CyclicLR is stepped once per epoch here: {n} steps of a {period}-step cycle, so it barely moves "
                    f"({cycles:.0%} of one cycle). step_size_up counts batches: step it after every batch.")
        return (f"CyclicLR is stepped once per epoch here: its step_size_up/step_size_down count epochs ({cycles:.3g} "
                "cycles), and the lr changes only between epochs. It is meant to be stepped after every batch.")
    return (f"{s.type} is meant to be stepped after every batch (optimizer.step()); stepped per epoch its step "
            f"counts are epochs and the lr changes only between epochs, {spe} batches at a time.")


def teach(spec: PreviewSpec, series: Series, opt: torch.optim.Optimizer) -> tuple[list[str], list[str]]:
    """Warnings that explain a pitfall, each with a stable code for tests and the page."""
    with np.errstate(all="ignore"):  # series may hold inf and NaN (overflow, torch raised)
        return _teach(spec, series, opt)


def _teach(spec: PreviewSpec, series: Series, opt: torch.optim.Optimizer) -> tuple[list[str], list[str]]:
    codes: list[str] = []
    texts: list[str] = []

    def warn(code: str, text: str) -> None:
        codes.append(code)
        texts.append(text)

    unit = "epoch" if spec.step is StepMode.EPOCH else "batch"
    oname = spec.optimizer.type
    mkey = spec.optimizer.info.momentum_key
    for s in _walk(spec.scheduler) + ([] if spec.swa is None else _walk(spec.swa.scheduler)):
        a = s.args
        if s.type in MOMENTUM_SCHEDULERS and a.get("cycle_momentum", True):
            what = "betas[0]" if mkey == "betas" else "momentum"
            lo = a.get("base_momentum", 0.8 if s.type == "CyclicLR" else 0.85)
            hi = a.get("max_momentum", 0.9 if s.type == "CyclicLR" else 0.95)
            text = (f"{s.type} also cycles the optimizer's {what} between {lo} and {hi} (cycle_momentum=True), "
                    f"overriding the {what} you set.")
            set_m = [g.get("momentum", spec.optimizer.args.get("momentum", 0.0)) for g in spec.groups]
            if oname == "SGD" and any(float(m) == 0.0 for m in set_m):
                text += (" Your SGD has momentum=0: CyclicLR/OneCycleLR silently turn momentum ON. Pass "
                         "cycle_momentum=False to keep plain SGD.")
            warn("momentum-cycled", text)
        if s.type == "CyclicLR":
            warn("cyclic-overrides-lr", "CyclicLR replaces each group's lr with base_lr when it is built; "
                                        "the optimizer's lr is ignored.")
        if s.type == "OneCycleLR":
            warn("onecycle-overrides-lr", "OneCycleLR starts at max_lr / div_factor whatever lr the optimizer has.")
            if "total_steps" not in a and not (a.get("epochs") and a.get("steps_per_epoch")):
                warn("onecycle-total-steps", f"OneCycleLR total_steps not given: using {series.lr.shape[1]}, the "
                                             "number of scheduler steps in this preview.")
        if s.type == "CosineAnnealingLR" and a["T_max"] < spec.scheduler_steps - 1 and s is spec.scheduler:
            warn("cosine-rises", f"CosineAnnealingLR's T_max={a['T_max']} is shorter than the {spec.scheduler_steps} "
                                 "scheduler steps: after T_max the lr climbs back up (T_max is half a period, not "
                                 "a length). Use T_max = total steps, or CosineAnnealingWarmRestarts for restarts.")
        if s.type in {"StepLR", "MultiStepLR", "ExponentialLR"} and a.get("gamma", 0.1) > 1:
            warn("gamma-grows", f"{s.type} gamma={a['gamma']} > 1 makes the lr grow.")
    info = spec.scheduler.info
    if spec.step is StepMode.BATCH and info.intent is Intent.EPOCH and spec.steps_per_epoch > 1:
        warn("epoch-schedule-per-batch",
             f"{spec.scheduler.type} is usually stepped once per epoch. Stepping it per batch means its step "
             f"counts ({_count_args(spec.scheduler)}) are in batches: with {spec.steps_per_epoch} batches per epoch "
             "it runs that many times faster.")
    if spec.step is StepMode.EPOCH and info.intent is Intent.BATCH and spec.steps_per_epoch > 1:
        warn("batch-schedule-per-epoch", _per_epoch_note(spec, spec.scheduler_steps))
    if spec.scheduler.type == "SequentialLR":
        ms = spec.scheduler.args["milestones"]
        lr = series.lr
        for m in ms:
            if 0 < m < lr.shape[1]:
                before, after = lr[:, m - 1], lr[:, m]
                jump = np.abs(after - before)
                rel = jump / np.maximum(np.abs(before), 1e-300)
                if np.isnan(rel).all():
                    continue  # torch raised before this milestone
                # A warm-up that hands over at its own pace (LinearLR reaching the base lr exactly
                # at the milestone) is no jump: compare with the steps on either side.
                neighbours = [np.abs(lr[:, k + 1] - lr[:, k]) for k in (m - 2, m) if k >= 0 and k + 1 < lr.shape[1]]
                usual = np.nanmax(np.stack(neighbours), axis=0) if neighbours else np.zeros_like(jump)
                rel = np.where(jump > 2 * usual + 1e-15, rel, 0.0)
                if np.nanmax(rel) > 0.05:
                    i = int(np.nanargmax(rel))
                    warn("sequential-jump",
                         f"SequentialLR jumps at {unit} {m}: group {spec.group_names[i]!r} goes from "
                         f"{before[i]:.6g} to {after[i]:.6g}. The next scheduler starts from the initial lr, not "
                         "from where the previous one ended.")
    if series.crash is not None and series.crash_at is not None:
        # One wording for every scheduler: where the loop stops, torch's error, then why.
        warn("stepped-past-end",
             f"{crash_place(series.crash_at, spec.step, spec.steps_per_epoch)}: {series.crash}. The training run "
             f"would stop there; the values from there on are null.{_crash_hint(spec, series.crash)}")
    high = [(where, v) for where, v in _momenta(spec) if v > 1]
    if high:
        listed = ", ".join(f"{where}={v:g}" for where, v in high)
        warn("momentum-above-one",
             f"Momentum above 1 ({listed}): torch accepts it, but a momentum of 1 or more never forgets a gradient: "
             "SGD's velocity grows without bound, and betas[0] >= 1 breaks Adam's averages. Usual values are 0.85-0.99.")
    if spec.swa is not None and spec.swa.start >= spec.scheduler_steps - 1:
        warn("swa-never-starts", f"swa.start={spec.swa.start} is at or past the last of the {spec.scheduler_steps} "
                                 "scheduler steps: the SWA scheduler never steps in this preview.")
    lr = series.lr
    if np.isinf(lr).any():
        warn("lr-overflow", "The learning rate overflows to infinity (shown as null): a factor above 1 compounds.")
    finite = lr[np.isfinite(lr)]
    if finite.size and finite.min() < 0:
        warn("negative-lr", "The learning rate becomes negative: torch optimizers reject negative lrs at build "
                            "time but not when a scheduler sets them.")
    if spec.metrics is not None and len(spec.metrics) < spec.scheduler_steps - 1:
        warn("metrics-short", f"{len(spec.metrics)} metric values for {spec.scheduler_steps} scheduler steps: "
                              "the last value is repeated.")
    del opt
    return codes, texts


def _count_args(spec: SchedulerSpec) -> str:
    names = [a.name for a in spec.info.args if a.kind in (ArgKind.INT, ArgKind.INT_LIST, ArgKind.OPTIONAL_INT)]
    return ", ".join(names) or "its step count"
