"""``paused_gc``: the structure views run with the cyclic GC paused (they allocate per module)."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def paused_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic GC paused.

    These views allocate one small dict per module; on a 20,000-module model the
    allocations trigger full collections that re-scan every module object and
    cost more than the work itself (measured: 3-4x). Nothing here makes cycles.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper
