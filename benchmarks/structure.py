"""Structure endpoints' data functions vs torchinfo.summary, timed in the same run.

Run: ``.venv/bin/python benchmarks/structure.py``. Measures summary + tree +
parameters table (the three JSON payloads of the structure page, serialised to
JSON as the server does) on a ResNet-50-like CNN, a GPT-2-small-like model, a
GPT-2-XL-like model on the meta device, and a 20,000-module model; and
``torchinfo.summary(model, verbose=0)`` (no input) on the same models.
Targets (2-core machine): 20,000 modules <= 80 ms; GPT-2-XL tree <= 5 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.inspect import structure  # noqa: E402
from benchmarks.zoo import gpt2_small, gpt2_xl, resnet50_like, wide_model  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Median of ``repeat`` runs, in milliseconds (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def ours(model: torch.nn.Module) -> None:
    json.dumps(structure.summary(model))
    json.dumps(structure.tree(model))
    json.dumps(structure.parameters_table(model))


def main() -> None:
    try:
        import torchinfo
    except ImportError:  # pragma: no cover
        sys.exit("torchinfo is needed for the comparison: pip install -e '.[bench]'")
    torch.set_num_threads(2)
    cases = []
    t0 = time.perf_counter()
    with torch.device("meta"):
        xl = gpt2_xl()
    build_meta_ms = (time.perf_counter() - t0) * 1000
    cases = [
        ("ResNet-50-like", resnet50_like()),
        ("GPT-2-small-like", gpt2_small()),
        ("GPT-2-XL-like (meta)", xl),
        ("20,000 modules", wide_model(20_000)),
    ]
    print(f"torch {torch.__version__}, torchinfo {torchinfo.__version__}; GPT-2-XL built on meta in {build_meta_ms:.0f} ms")
    print(f"{'model':24} {'modules':>8} {'params':>14} {'ours ms':>9} {'tree ms':>8} {'torchinfo ms':>13} {'speed-up':>9}")
    for name, model in cases:
        n_mod = sum(1 for _ in model.named_modules())
        n_par = sum(p.numel() for p in model.parameters())
        repeat = 5 if n_mod > 5000 else 10
        ours_ms = best_of(lambda m=model: ours(m), repeat)
        tree_ms = best_of(lambda m=model: json.dumps(structure.tree(m)), repeat)
        ti_ms = best_of(lambda m=model: torchinfo.summary(m, verbose=0), 3)
        print(f"{name:24} {n_mod:>8,} {n_par:>14,} {ours_ms:>9.1f} {tree_ms:>8.1f} {ti_ms:>13.1f} {ti_ms / ours_ms:>8.1f}x")


if __name__ == "__main__":
    main()
