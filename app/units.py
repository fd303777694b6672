"""Numbers as people read them; shared by the pages and the terminal commands."""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    """1536 -> '1.5 KiB' (binary units, as memory is counted)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
