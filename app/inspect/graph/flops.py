"""FLOPs as ``torch.utils.flop_counter.FlopCounterMode`` counts them, read per op or per module call.

The counter sees ATen ops as they dispatch. An exported graph holds composite ops
(``aten.linear``) that FlopCounterMode never sees directly (it counts the ``addmm`` they
decompose into), so each exported op is re-run once on its fake inputs under the counter:
the count is the one a forward on the same device would give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.flop_counter import FlopCounterMode


class FlopMeter:
    """One FlopCounterMode, read as a running total (``with FlopMeter() as m: ... m.total``)."""

    def __init__(self) -> None:
        self._mode = FlopCounterMode(display=False)

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
