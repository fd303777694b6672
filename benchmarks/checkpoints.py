"""Checkpoint metadata without reading tensors: torchscope vs torch.load / safetensors in the same run.

Writes a GPT-2-small-sized state_dict (124M float32 parameters, ~500 MB) as a
torch.save zip and as safetensors into a temp dir, then times (median of runs,
warm page cache):
  - listing keys/shapes/dtypes: torchscope's open vs torch.load(mmap=True,
    weights_only=True), torch.load(weights_only=True) (reads everything), and
    safetensors.safe_open + get_slice shapes;
  - resident memory added by opening;
  - reading one tensor lazily;
  - the load_state_dict report against a model built on the meta device.

Usage: python benchmarks/checkpoints.py [--layers 12] [--runs 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.zoo import GPT2Like
from torchscope.inspect.checkpoints import open_checkpoint
from torchscope.inspect.compare import Entry, load_report


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


LAST = [0.0]  # best time of the latest timed() call


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median milliseconds of ``runs`` calls (the best one is kept in LAST: the machine may be shared)."""
    times = []
    result: object = None
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    LAST[0] = min(times) * 1000
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with torch.device("meta"):
        meta_model = GPT2Like(n_layer=args.layers)
    del meta_model.lm_head  # tied to wte: GPT-2 checkpoints save it once, as wte.weight
    torch.manual_seed(0)
    sd = {k: torch.randn(v.shape) for k, v in meta_model.state_dict().items()}
    n_params = sum(t.numel() for t in sd.values())
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as tmp:
        pt, st = Path(tmp) / "gpt2.pt", Path(tmp) / "gpt2.safetensors"
        torch.save(sd, pt)
        save_file(sd, st)
        del sd
        gc.collect()
        size_mb = pt.stat().st_size / 2**20
        print(f"state_dict: {n_params / 1e6:.1f}M parameters, {len(meta_model.state_dict())} tensors, "
              f"torch.save {size_mb:.0f} MB, safetensors {st.stat().st_size / 2**20:.0f} MB; torch {torch.__version__}")
        print(f"median of {args.runs} runs, warm page cache\n")
        rows: list[tuple[str, float, str]] = []
        best: list[float] = []

        ms, ck = timed(lambda: open_checkpoint(st), args.runs)
        rows.append(("safetensors  torchscope open (header)", ms, f"{len(ck.tensors)} keys"))  # type: ignore[attr-defined]
        best.append(LAST[0])

        def st_peer() -> int:
            with safe_open(str(st), "pt") as f:
                keys = f.keys()  # safe_open is not iterable
                return len([f.get_slice(k).get_shape() for k in keys])

        ms, n = timed(st_peer, args.runs)
        rows.append(("safetensors  safe_open + get_slice shapes", ms, f"{n} keys"))
        best.append(LAST[0])

        ms, ck = timed(lambda: open_checkpoint(pt), args.runs)
        rows.append(("torch.save   torchscope open (restricted unpickler)", ms, f"{len(ck.tensors)} keys"))  # type: ignore[attr-defined]
        best.append(LAST[0])
        ms, obj = timed(lambda: torch.load(pt, mmap=True, weights_only=True), args.runs)
        rows.append(("torch.save   torch.load(mmap=True, weights_only=True)", ms, f"{len(obj)} keys"))  # type: ignore[arg-type]
        best.append(LAST[0])
        del obj
        ms, obj = timed(lambda: torch.load(pt, weights_only=True), max(1, args.runs // 3))
        rows.append(("torch.save   torch.load(weights_only=True) (reads all)", ms, f"{len(obj)} keys"))  # type: ignore[arg-type]
        best.append(LAST[0])
        del obj
        gc.collect()

        print(f"  {'':<58} {'median':>9}    {'best':>9}")
        for (label, ms, note), b in zip(rows, best, strict=True):
            print(f"  {label:<58} {ms:9.3f} ms {b:9.3f} ms   {note}")

        print()
        for label, path in (("torch.save", pt), ("safetensors", st)):
            gc.collect()
            before = rss_mb()
            ck = open_checkpoint(path)
            after_open = rss_mb()
            t0 = time.perf_counter()
            t = ck.tensor("wte.weight")
            first = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            ck.tensor("h.0.mlp.c_fc.weight")
            second = (time.perf_counter() - t0) * 1000
            total = float(t.sum())  # touches every page of the 147 MB embedding
            after_read = rss_mb()
            print(f"  {label:<12} RSS +{after_open - before:6.1f} MB after open; first tensor {first:7.2f} ms, next "
                  f"{second:6.3f} ms; +{after_read - before:6.1f} MB after summing wte.weight ({total:.1f})")
            del ck, t
        print()

        ck = open_checkpoint(pt)
        entries = {k: Entry(i.shape, i.dtype) for k, i in ck.state_dict_keys().items()}
        ms, report = timed(lambda: load_report(meta_model, entries, ck.state_dict_metadata), args.runs)
        print(f"  load_state_dict report vs a meta-device model: {ms:.3f} ms "
              f"(strict ok: {report.strict_ok})")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
