"""Totals of a forward (FLOPs, MACs, bytes, a training-memory estimate), what each means, and per-module sums."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from torchscope.inspect.forward.record import Call
from torchscope.inspect.structure import Walk, is_uninitialized

# Shown next to each total on the Forward page and under the CLI's table.
EXPLAIN: dict[str, str] = {
    "flops": "Floating-point operations of one forward, as torch.utils.flop_counter.FlopCounterMode counts them: "
    "matrix multiplies, convolutions and attention, 2 per multiply-add. Element-wise ops, norms, activations "
    "and embeddings lookups are not counted.",
    "macs": "Multiply-accumulates: FLOPs / 2 (FlopCounterMode counts a multiply-add as 2 FLOPs).",
    "param_bytes": "Every distinct parameter once (tied weights count once), at its own dtype.",
    "buffer_bytes": "Buffers (BatchNorm running stats, masks...), persistent or not.",
    "activation_bytes": "What autograd keeps from this forward for the backward pass (its saved tensors, each "
    "storage once, parameters excluded): the activation memory of training on these inputs. 0 when nothing "
    "requires grad. It grows with the batch size and sequence length.",
    "output_bytes": "The outputs of every leaf module call added up (torchinfo's forward pass size counts "
    "outputs the same way); tensors that are only views are counted again.",
    "training_bytes": "Parameters + gradients (one per trainable parameter) + optimizer state + buffers + "
    "activations. Optimizer state: SGD with momentum keeps 1 tensor per trainable parameter, Adam and AdamW 2 "
    "(exp_avg, exp_avg_sq). All at the parameters' dtypes (no mixed precision, no ZeRO sharding); the "
    "allocator's overhead and temporary buffers are not included.",
}

OPTIMIZER_STATES = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class ParamStats:
    """Bytes of the model's distinct parameters (all / trainable) and buffers."""

    param_bytes: int
    trainable_bytes: int
    buffer_bytes: int

    @classmethod
    def of(cls, walk: Walk) -> ParamStats:
        p = t = b = 0
        for _, tensor in walk.distinct(walk.params):
            if is_uninitialized(tensor):
                continue
            n = tensor.numel() * tensor.element_size()
            p += n
            if tensor.requires_grad:
                t += n
        for _, tensor in walk.distinct(walk.buffers):
            if not is_uninitialized(tensor):
                b += tensor.numel() * tensor.element_size()
        return cls(p, t, b)


def module_params(walk: Walk) -> dict[int, int]:
    """id(module) -> parameters of its subtree (tied counted once), at its first path."""
    out: dict[int, int] = {}
    for entry in walk.by_path.values():
        out.setdefault(id(entry.module), entry.params_total)
    return out


def totals(calls: list[Call], flops: int, activation_bytes: int, stats: ParamStats) -> dict[str, Any]:
    """The ``totals`` object of the answer."""
    grads = stats.trainable_bytes
    base = stats.param_bytes + grads + stats.buffer_bytes + activation_bytes
    optimizer = {name: n * stats.trainable_bytes for name, n in OPTIMIZER_STATES.items()}
    return {
        "flops": flops,
        "macs": flops // 2,
        "param_bytes": stats.param_bytes,
        "trainable_param_bytes": stats.trainable_bytes,
        "buffer_bytes": stats.buffer_bytes,
        "activation_bytes": activation_bytes,
        "output_bytes": sum(c.output_bytes for c in calls if c.leaf),
        "calls": len(calls),
        "training_bytes": {
            "parameters": stats.param_bytes,
            "gradients": grads,
            "buffers": stats.buffer_bytes,
            "activations": activation_bytes,
            "optimizer_state": optimizer,
            "total": {name: base + extra for name, extra in optimizer.items()},
        },
    }


def module_paths(module: nn.Module) -> dict[str, list[str]]:
    """First ``named_modules()`` path -> every path of that module object (shared modules have several)."""
    first: dict[int, str] = {}
    paths: dict[str, list[str]] = {}
    for path, m in module.named_modules(remove_duplicate=False):
        head = first.setdefault(id(m), path)
        paths.setdefault(head, []).append(path)
    return {head: all_paths for head, all_paths in paths.items() if len(all_paths) > 1}


def per_module(calls: list[dict[str, Any]], aliases: dict[str, list[str]], flops: int) -> dict[str, Any]:
    """Per tree node (every path, shared modules at each of theirs): calls, first output, FLOPs own/subtree."""
    nodes: dict[str, dict[str, Any]] = {}
    for c in calls:
        node = nodes.get(c["path"])
        if node is None:
            node = nodes[c["path"]] = {
                "calls": 0,
                "output": c["outputs"],
                "flops": 0,
                "flops_total": 0,
                "output_bytes": c["output_bytes"],
            }
        node["calls"] += 1
        node["flops"] += c["flops"]
        node["flops_total"] += c["flops_total"]
    for head, others in aliases.items():
        if head in nodes:
            for other in others:
                nodes.setdefault(other, nodes[head])
    return {"flops": flops, "nodes": nodes}
