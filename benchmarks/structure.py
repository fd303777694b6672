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

from benchmarks.zoo import gpt2_small, gpt2_xl, resnet50_like, wide_model
from torchscope.inspect import structure


def dumps(obj: object) -> str:
    """Serialised as the server does (compact separators)."""
    return json.dumps(obj, separators=(",", ":"))


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
    """Cold: the three payloads from scratch, one shared walk, serialised as the server does."""
    index = structure.paused_gc(structure.ModuleIndex)(model)
    dumps(structure.summary(model, walk=index.walk))
    dumps(structure.tree(model, index=index))
    dumps(structure.parameters_table(model, index.walk))


def first_view(model: torch.nn.Module) -> None:
    """What the structure page asks for first: summary, a bounded tree, the parameter table."""
    index = structure.paused_gc(structure.ModuleIndex)(model)
    dumps(structure.summary(model, walk=index.walk))
    dumps(structure.tree(model, depth=2, max_nodes=400, index=index))
    dumps(structure.parameters_table(model, index.walk))


def served(model: torch.nn.Module) -> Callable[[], object]:
    """Warm HTTP: the same three requests to a running app (memoised per structure version)."""
    from fastapi.testclient import TestClient

    from torchscope.inspect.registry import ModelRegistry
    from torchscope.main import create_app
    from torchscope.settings import Settings

    registry = ModelRegistry()
    registry.add("m", "bench", model)
    client = TestClient(create_app(Settings(), registry=registry))
    client.__enter__()

    def go() -> None:
        for suffix in ("", "/tree", "/parameters"):
            assert client.get("/api/models/m" + suffix).status_code == 200

    return go


def main() -> None:
    try:
        import torchinfo
    except ImportError:  # pragma: no cover
        sys.exit("torchinfo is needed for the comparison: pip install -e '.[bench]'")
    torch.set_num_threads(2)
    from torchscope.inspect.schedules import warm_up

    warm_up()  # the app warms torch.optim up in a thread at startup: do it now, not during timing
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
    print("ms, median of repeated runs. cold = summary + whole tree + parameters JSON from scratch;")
    print("page = the structure page's first requests (bounded tree); warm = the 3 HTTP requests, memoised.")
    head = f"{'model':22} {'modules':>8} {'params':>14} {'cold':>8} {'tree':>7} {'page':>7} {'warm':>7} {'torchinfo':>10} {'cold vs ti':>11}"
    print(head)
    for name, model in cases:
        n_mod = sum(1 for _ in model.named_modules())
        n_par = sum(p.numel() for p in model.parameters())
        repeat = 5 if n_mod > 5000 else 10
        cold_ms = best_of(lambda m=model: ours(m), repeat)
        tree_ms = best_of(lambda m=model: dumps(structure.tree(m)), repeat)
        page_ms = best_of(lambda m=model: first_view(m), repeat)
        warm_ms = best_of(served(model), repeat)
        ti_ms = best_of(lambda m=model: torchinfo.summary(m, verbose=0), 3)
        print(
            f"{name:22} {n_mod:>8,} {n_par:>14,} {cold_ms:>8.1f} {tree_ms:>7.1f} {page_ms:>7.1f} {warm_ms:>7.1f} "
            f"{ti_ms:>10.1f} {ti_ms / cold_ms:>10.1f}x"
        )


if __name__ == "__main__":
    main()
