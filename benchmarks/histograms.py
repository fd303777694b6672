"""Benchmark: every histogram of a 124M-parameter GPT-2-small-shaped model, exact, 64 bins.

Measured in the same run, on the same tensors:
  * ours: torchscope.inspect.histograms.model_histograms (exact counts; with and without the
    float64 statistics)
  * TensorBoard: SummaryWriter.add_histogram (the peer tool), 64 bins
  * a plain torch.histc loop (min/max + histc per tensor), for reference
  * one read of every byte (sum of each tensor), the floor

Usage: python benchmarks/histograms.py [--repeat N]
Target (issue 3): ours <= 150 ms on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.zoo import gpt2_small
from torchscope.inspect.histograms import model_histograms, named_tensors

CPU: dict[int, list[float]] = {}


def timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times; the process CPU time of each run is kept too (robust to a busy machine)."""
    fn()  # warm-up: thread pool, allocator, caches
    out, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[id(out)] = cpu
    return out


def fmt(ts: list[float]) -> str:
    cpu = CPU.get(id(ts), [float("nan")])
    return (
        f"best {min(ts) * 1e3:8.1f} ms   median {statistics.median(ts) * 1e3:8.1f} ms"
        f"   (CPU {min(cpu) * 1e3:8.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tb-repeat", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    with torch.no_grad():
        model = gpt2_small()
        for p in model.parameters():
            p.normal_(0, 0.02)
    tensors = [(r.name, r.tensor.detach()) for r in named_tensors(model)]
    n_params = sum(t.numel() for _, t in tensors)
    print(
        f"model: GPT-2 small shapes, {len(tensors)} tensors, {n_params:,} elements (tied lm_head counted once)"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"
    )

    # Correctness first: the counts are numpy's on the returned edges.
    hs = model_histograms(model, 64, stats=False)
    for h, (_, t) in zip(hs[:6], tensors[:6], strict=True):
        ref = np.histogram(t.float().numpy(), bins=np.asarray(h.edges))[0]
        assert list(ref) == list(h.counts), h.name
    assert sum(sum(h.counts) for h in hs) == n_params and not any(h.sampled for h in hs)
    print(
        "exactness: counts == numpy.histogram(t, bins=edges) on checked tensors; nothing sampled\n"
    )

    results: dict[str, list[float]] = {}
    results["read every byte once (t.sum())"] = timeit(
        lambda: [t.sum() for _, t in tensors], args.repeat
    )
    results["ours: histograms (exact, 64 bins)"] = timeit(
        lambda: model_histograms(model, 64, stats=False), args.repeat
    )
    results["ours: histograms + float64 stats"] = timeit(
        lambda: model_histograms(model, 64, stats=True), args.repeat
    )

    def histc_loop() -> None:
        for _, t in tensors:
            lo, hi = torch.aminmax(t)
            torch.histc(t, bins=64, min=float(lo), max=float(hi))

    results["torch.histc loop (min/max + histc)"] = timeit(histc_loop, args.repeat)

    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as exc:  # the bench extra is not installed
        print(f"TensorBoard not available ({exc}); install the [bench] extra")
        SummaryWriter = None  # type: ignore[assignment,misc]
    if SummaryWriter is not None:
        with tempfile.TemporaryDirectory() as logdir, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            writer = SummaryWriter(logdir)
            step = [0]

            def tensorboard() -> None:
                step[0] += 1
                for name, t in tensors:
                    writer.add_histogram(name, t, step[0], bins=64)
                writer.flush()

            results["TensorBoard SummaryWriter.add_histogram"] = timeit(tensorboard, args.tb_repeat)
            writer.close()

    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {fmt(v)}")
    ours = min(results["ours: histograms (exact, 64 bins)"])
    print()
    if "TensorBoard SummaryWriter.add_histogram" in results:
        tb = min(results["TensorBoard SummaryWriter.add_histogram"])
        print(f"ratio TensorBoard / ours:            {tb / ours:6.1f}x")
    print(
        f"ratio torch.histc loop / ours:       {min(results['torch.histc loop (min/max + histc)']) / ours:6.1f}x"
    )
    print(f"target <= 150 ms: {'met' if ours <= 0.150 else 'NOT met'} ({ours * 1e3:.1f} ms best)")


if __name__ == "__main__":
    main()
