"""FLOPs as ``torch.utils.flop_counter.FlopCounterMode`` counts them, read per op or per module call.

The counter sees ATen ops as they dispatch. An exported graph holds composite ops
(``aten.linear``) that FlopCounterMode never sees directly (it counts the ``addmm`` they
decompose into), so each exported op is re-run once on its fake inputs under the counter:
the count is the one a forward on the same device would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd


class FlopMeter:
    """One FlopCounterMode, read as a running total (``with FlopMeter() as m: ... m.total``)."""

    def __init__(self) -> None:
        self._mode = FlopCounterMode(display=False)
        self._may_count: dict[Any, bool] = {}

    def may_count(self, op: Any) -> bool:
        """Whether FlopCounterMode can count anything for ``op``: it has a formula for it, or ``op``
        decomposes (CompositeImplicitAutograd, like ``aten.linear``) into ops that may have one.
        Any other op counts 0 FLOPs: re-running it to find that out is wasted time (most of a
        transformer's ops: views, adds, softmaxes)."""
        if not isinstance(op, torch._ops.OpOverload):
            return True  # higher-order ops and Python callables: re-run them
        known = self._may_count.get(op)
        if known is None:
            known = (
                op.overloadpacket in self._mode.flop_registry
                or _COMPOSITE in op.py_kernels
                or torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), _COMPOSITE)  # type: ignore[no-untyped-call]
            )
            self._may_count[op] = known
        return known

    def __enter__(self) -> FlopMeter:
        self._mode.__enter__()  # type: ignore[no-untyped-call]  # untyped in torch's stubs
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)  # type: ignore[no-untyped-call]

    @property
    def total(self) -> int:
        return int(self._mode.get_total_flops())

    def count(self, fn: Callable[[], Any]) -> int:
        """FLOPs of ``fn()`` (run inside the meter); an op that cannot re-run counts 0."""
        before = self.total
        try:
            fn()
        except Exception:  # a re-run is only for counting: never let it fail a capture
            return 0
        return self.total - before
