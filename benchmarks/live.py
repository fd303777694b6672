"""Change detection on live models (torchscope.show): the per-request check vs what it saves, same run.

Run: ``.venv/bin/python benchmarks/live.py``. For GPT-2 small (148 tensors, 124M parameters),
a ResNet-50-like CNN and a 20,000-module model, times:

- ``check``: ``ModelWatch.check()`` on an unchanged model (what every request to a model served
  from Python pays), and after an in-place write to one tensor;
- ``rebaseline``: a check after a structure change (it also takes weak references to every
  module and tensor);
- ``stamp``: ``content_stamp(bits=False)`` of every tensor, what reusing the Weights page's memoised
  statistics of a live model costs (writes through ``.data`` bump no counter), next to
  ``table``, computing those statistics again;
- the alternatives, measured in the same run: torch's own ``named_modules()`` +
  ``named_parameters()`` + ``named_buffers()`` walk (the obvious way to fingerprint), a content
  checksum of every tensor (the only way to see writes through ``.data``), and recomputing the
  structure page's memoised views (what dropping the memo on every request would cost).

Target (2-core machine): the check costs less than 2% of recomputing the structure views, and
at most 15 ms on 20,000 modules (the page then polls every 1.5 s or more: poll_ms).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.structure import best_of
from benchmarks.zoo import gpt2_small, resnet50_like, wide_model
from torchscope.inspect import overview, structure
from torchscope.inspect.live import ModelWatch, TorchHooks, content_stamp
from torchscope.web.routers.live import MAX_POLL_MS, POLL_MS


def torch_walk(model: torch.nn.Module) -> object:
    return (
        [(n, id(m), m.training) for n, m in model.named_modules()],
        [(n, id(p), p._version, p.requires_grad) for n, p in model.named_parameters()],
        [(n, id(b), b._version) for n, b in model.named_buffers()],
    )


@torch.no_grad()
def checksum(model: torch.nn.Module) -> float:
    return float(sum(t.double().sum() for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()))


def structure_views(model: torch.nn.Module) -> None:
    index = structure.paused_gc(structure.ModuleIndex)(model)
    structure.summary(model, walk=index.walk)
    structure.tree(model, index=index)
    structure.parameters_table(model, index.walk)


def measure(name: str, model: torch.nn.Module, hooks: TorchHooks, repeat: int) -> str:
    tensors = len(list(model.parameters())) + len(list(model.buffers()))
    watch = ModelWatch(model, hooks)
    watch.check()
    check = best_of(watch.check, repeat)
    last = list(model.parameters())[-1]  # a small tensor: the write itself costs nothing

    def write_then_check() -> None:
        with torch.no_grad():
            last.mul_(1.0)
        watch.check()

    def rebaseline() -> None:
        model.train(not model.training)
        watch.check()

    write = best_of(write_then_check, repeat)
    rebase = best_of(rebaseline, max(3, repeat // 5))
    walk = best_of(lambda: torch_walk(model), max(3, repeat // 5))
    sums = best_of(lambda: checksum(model), 3)
    views = best_of(lambda: structure_views(model), 3)
    every = [*model.parameters(), *model.buffers()]
    stamp = best_of(lambda: content_stamp(every, bits=False), 3)  # as the table's guard
    table = best_of(lambda: overview.tensor_table(model), 1)
    poll = min(MAX_POLL_MS, max(POLL_MS, int(check * 100))) / 1000
    return (
        f"{name:<16}{tensors:>8}{check:>9.2f}{write:>9.2f}{rebase:>9.2f}{walk:>12.2f}{sums:>10.1f}{views:>9.1f}"
        f"{stamp:>9.1f}{table:>9.1f}{poll:>8.1f}"
    )


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    hooks = TorchHooks()
    hooks.install()
    header = (
        f"{'model':<16}{'tensors':>8}{'check':>9}{'+write':>9}{'rebase':>9}{'torch walk':>12}{'checksum':>10}{'views':>9}"
        f"{'stamp':>9}{'table':>9}{'poll':>8}"
    )
    print(header + "   (ms; poll in s)")
    for name, build, repeat in [
        ("GPT-2 small", gpt2_small, 50),
        ("ResNet-50-like", resnet50_like, 50),
        ("20,000 modules", lambda: wide_model(20_000), 15),
    ]:
        print(measure(name, build(), hooks, repeat))
        gc.collect()
    hooks.remove()


if __name__ == "__main__":
    main()
