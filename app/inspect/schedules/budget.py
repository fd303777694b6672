"""The bound on one preview's work (issue 9): checked before anything is built or stepped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torchscope.inspect.errors import InvalidRequest

if TYPE_CHECKING:
    from torchscope.inspect.schedules.requests import SchedulerSpec

# Issue 9: one preview's total work, steps x param groups x schedulers (composite children count,
# the per-batch overlay doubles it). Past it, time and memory grow without bound: 300 chained
# schedulers over a million steps took 10 GB. 8M is a million steps of an 8-scheduler
# composition on one group, ~7 s and ~600 MB at most.
MAX_PREVIEW_WORK = 8_000_000


def scheduler_count(spec: SchedulerSpec) -> int:
    """The scheduler and every scheduler composed inside it."""
    return 1 + sum(scheduler_count(c) for c in spec.children)


def check_work(
    steps: int, n_groups: int, schedulers: Sequence[SchedulerSpec] | int, overlay: bool = False, field: str = "epochs"
) -> None:
    """Refuse a preview whose steps x groups x schedulers is over MAX_PREVIEW_WORK (a 422 naming it).

    ``schedulers``: the specs (their compositions counted), or a count already made (resume).
    """
    count = schedulers if isinstance(schedulers, int) else sum(scheduler_count(s) for s in schedulers)
    work = steps * max(n_groups, 1) * count * (2 if overlay else 1)
    if work > MAX_PREVIEW_WORK:
        raise InvalidRequest(
            f"{field}: {steps:,} steps x {n_groups} param group(s) x {count} scheduler(s)"
            f"{' x 2 (overlay)' if overlay else ''} = {work:,} is over the limit of {MAX_PREVIEW_WORK:,} "
            "(max_preview_work): preview fewer steps, groups or schedulers",
            field=field,
            rule="max_preview_work",
            limit=MAX_PREVIEW_WORK,
        )
