"""The dataflow graph's domain (issue 11), checked against torch itself: real forwards with hooks,
FlopCounterMode, named_modules(). Captures are cached per module (each takes ~0.1-2 s)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.fixtures import graph_models as G
from tests.fixtures.models import ScriptedNorm
from torchscope.examples import NestedNet, ResidualBlock, TinyTransformerLM
from torchscope.inspect.forward.sources import resolve_inputs
from torchscope.inspect.graph import (
    Capture,
    CaptureMode,
    capture_model,
    graph_answer,
    module_facts,
    search,
)
from torchscope.inspect.graph.facts import pool, signatures
from torchscope.inspect.overview import TensorTable, tensor_table

MODELS: dict[str, Callable[[], nn.Module]] = {
    "residual": lambda: ResidualBlock(8),
    "nested": NestedNet,
    "transformer": TinyTransformerLM,
    "reused": G.ReusedTwice,
    "heads": G.TwoHeads,
    "scripted": G.ScriptedPart,
    "gpt2": G.tiny_gpt2,
}


@cache
def model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS[name]()


def real_inputs(m: nn.Module) -> tuple[tuple[Any, ...], dict[str, Any]]:
    spec = resolve_inputs(m).spec
    args = tuple(_real(a) for a in spec.args)
    kwargs = {k: _real(v) for k, v in spec.kwargs.items()}
    return args, kwargs


def _real(node: Any) -> Any:
    if hasattr(node, "shape") and hasattr(node, "dtype"):
        if node.dtype.is_floating_point:
            return torch.randn(node.shape, dtype=node.dtype)
        return torch.randint(0, node.high or 2, node.shape, dtype=node.dtype)
    return node


@cache
def captured(name: str, mode: CaptureMode = CaptureMode.auto) -> Capture:
    m = model(name)
    return capture_model(m, resolve_inputs(m), mode)


@cache
def facts(name: str) -> Any:
    return module_facts(model(name))


@cache
def table(name: str) -> TensorTable:
    return tensor_table(model(name))


def answer(name: str, path: str = "", call: int = 0, mode: CaptureMode = CaptureMode.auto, **kw: Any) -> dict[str, Any]:
    return graph_answer(captured(name, mode), facts(name), path, call, table=table(name), **kw)


def by_id(a: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in a["nodes"]}


def sources_of(a: dict[str, Any], target: str) -> list[str]:
    return [e["source"] for e in a["edges"] if e["target"] == target]


BOTH = [CaptureMode.auto, CaptureMode.hooks]


@pytest.mark.parametrize("mode", BOTH)
def test_residual_add_has_two_inputs_one_from_the_block_input(mode: CaptureMode) -> None:
    a = answer("nested", "blocks.0", mode=mode)
    nodes = by_id(a)
    adds = [n for n in a["nodes"] if n["kind"] == "op" and n["label"] == "add"]
    assert len(adds) == 1
    srcs = sources_of(a, adds[0]["id"])
    assert len(srcs) == 2
    kinds = sorted(nodes[s]["kind"] for s in srcs)
    assert kinds == ["input", "module"]
    assert nodes[next(s for s in srcs if nodes[s]["kind"] == "module")]["path"] == "blocks.0.mlp"
    # the block's input also feeds its norm: one input port, two consumers
    port = next(s for s in srcs if nodes[s]["kind"] == "input")
    assert {nodes[e["target"]]["label"] for e in a["edges"] if e["source"] == port} == {"add", "norm"}


@pytest.mark.parametrize("mode", BOTH)
def test_transformer_attention_output_meets_the_residual_stream(mode: CaptureMode) -> None:
    a = answer("transformer", "blocks.layers.0", mode=mode)
    nodes = by_id(a)
    adds = [n for n in a["nodes"] if n["kind"] == "op" and n["label"] == "add"]
    assert len(adds) == 2  # after attention, after the feed-forward
    first = sources_of(a, adds[0]["id"])
    assert {nodes[s]["kind"] for s in first} == {"input", "module"}  # the stream, and attention's branch
    branch = next(s for s in first if nodes[s]["kind"] == "module")
    assert nodes[branch]["path"] == "blocks.layers.0.dropout1"
    assert [nodes[s]["path"] for s in sources_of(a, branch)] == ["blocks.layers.0.self_attn"]
    # the second add reads the first one (the stream goes on)
    assert adds[0]["id"] in sources_of(a, adds[1]["id"])


@pytest.mark.parametrize("mode", BOTH)
def test_module_called_twice_appears_twice(mode: CaptureMode) -> None:
    a = answer("reused", mode=mode)
    nodes = by_id(a)
    assert {"m:fc#0", "m:fc#1", "m:other#0"} <= nodes.keys()
    assert sources_of(a, "m:other#0") == ["m:fc#0"]
    assert sources_of(a, "m:fc#1") == ["m:other#0"]
    assert nodes["m:fc#1"]["call"] == 1 and nodes["m:fc#1"]["path"] == "fc"
    inner = answer("reused", "fc", 1, mode=mode)
    assert inner["call"] == 1 and inner["calls"] == 2


def real_calls(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, list[tuple[set[tuple[int, ...]], set[tuple[int, ...]]]]]:
    """(path -> per call: shapes in, shapes out) from a real forward with hooks, on a copy."""
    from torchscope.inspect.graph.outputs import named_tensors

    m = copy.deepcopy(m)
    calls: dict[str, list[tuple[set[tuple[int, ...]], set[tuple[int, ...]]]]] = {}
    handles = []
    for path, sub in m.named_modules():
        def hook(mod: nn.Module, a: Any, kw: Any, out: Any, path: str = path) -> None:
            ins = {tuple(t.shape) for _n, t in named_tensors((a, kw))}
            outs = {tuple(t.shape) for _n, t in named_tensors(out)}
            calls.setdefault(path, []).append((ins, outs))
        if not isinstance(sub, torch.jit.ScriptModule):
            handles.append(sub.register_forward_hook(hook, with_kwargs=True))
    with torch.no_grad():
        m(*args, **kwargs)
    for h in handles:
        h.remove()
    return calls


def all_views(name: str, mode: CaptureMode) -> list[dict[str, Any]]:
    cap = captured(name, mode)
    return [answer(name, "", 0, mode=mode)] + [answer(name, f.path, f.call, mode=mode) for f in cap.frames.values()]


@pytest.mark.parametrize("mode", BOTH)
@pytest.mark.parametrize("name", ["nested", "transformer", "reused", "heads", "gpt2"])
def test_edge_shapes_equal_a_real_forward_and_paths_exist(name: str, mode: CaptureMode) -> None:
    m = model(name)
    real = real_calls(m, *real_inputs(m))
    paths = {p for p, _ in m.named_modules()}
    boxes = 0
    for view in all_views(name, mode):
        assert view["path"] in paths
        nodes = by_id(view)
        for e in view["edges"]:
            src = nodes[e["source"]]
            # GPT-2's KV cache tensors leave a block through the cache object it mutates, not as
            # its return value: true edges, but not among the block's outputs.
            cache_out = name == "gpt2" and nodes[e["target"]]["kind"] == "output"
            if src["kind"] == "module" and not e.get("via") and not cache_out:
                boxes += 1
                ins, outs = real[src["path"]][src["call"]]
                assert tuple(e["shape"]) in outs, (src["path"], e)
            dst = nodes[e["target"]]
            if dst["kind"] == "module" and not e.get("via"):
                ins, outs = real[dst["path"]][dst["call"]]
                assert tuple(e["shape"]) in ins | outs or name == "gpt2", (dst["path"], e)
        for n in view["nodes"]:
            if n["kind"] == "module":
                assert n["path"] in paths
    assert boxes > 0


def test_every_frame_path_exists_in_named_modules() -> None:
    for name in ("gpt2", "transformer"):
        paths = {p for p, _ in model(name).named_modules()}
        assert {f.path for f in captured(name).frames.values()} <= paths


@pytest.mark.parametrize("mode", BOTH)
def test_flops_equal_flop_counter_on_a_real_forward(mode: CaptureMode) -> None:
    m = model("transformer")
    args, kwargs = real_inputs(m)
    with FlopCounterMode(display=False) as counter:
        copy.deepcopy(m)(*args, **kwargs)
    cap = captured("transformer", mode)
    assert cap.total_flops == counter.get_total_flops() > 0
    layer = answer("transformer", "blocks", mode=mode)
    per_layer = counter.get_flop_counts()
    name = next(k for k in per_layer if k.endswith("layers.0"))
    assert by_id(layer)["m:blocks.layers.0#0"]["flops"] == sum(per_layer[name].values())


def test_export_is_first_choice_and_hooks_the_fallback_with_reason() -> None:
    assert captured("nested").method == "export"
    scripted = captured("scripted")
    assert scripted.method == "hooks"
    assert "torch.export could not trace this model" in scripted.reason
    a = answer("scripted")
    nodes = by_id(a)
    # the TorchScript module takes no hooks: its work is folded into the edge a -> add
    add = next(n for n in a["nodes"] if n["label"] == "add")
    assert sorted(nodes[s]["label"] for s in sources_of(a, add["id"])) == ["a", "args[0]"]
    assert a["capture"] == "hooks"


def test_a_model_on_meta_captures_with_export_and_says_so() -> None:
    with torch.device("meta"):
        meta = MODELS["gpt2"]()
    cap = capture_model(meta, resolve_inputs(meta), CaptureMode.auto)
    assert cap.method == "export" and "could not" not in cap.reason
    on_cpu = captured("gpt2")
    assert cap.total_flops == on_cpu.total_flops and cap.frames.keys() == on_cpu.frames.keys()
    a = graph_answer(cap, facts("gpt2"), "transformer.h.0")
    assert any("meta device" in w for w in a["warnings"]) and not a["stats_available"]
    assert a["edges"] == answer("gpt2", "transformer.h.0")["edges"]


@pytest.mark.parametrize("m", [G.BatchNormNet(), ScriptedNorm()], ids=["batchnorm", "torchscript"])
def test_capture_never_touches_the_model(m: nn.Module) -> None:
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rng = torch.get_rng_state()
    for mode in BOTH:
        capture_model(m, resolve_inputs(m, given=[[4, 3]] if isinstance(m, ScriptedNorm) else None), mode)
    after = m.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert m.training and torch.equal(rng, torch.get_rng_state())


def test_params_toggle_draws_the_tensors_an_op_reads() -> None:
    plain = answer("nested", "blocks.0.mlp.fc1")
    assert {n["kind"] for n in plain["nodes"]} == {"input", "op", "output"}
    shown = answer("nested", "blocks.0.mlp.fc1", params=True)
    params = [n for n in shown["nodes"] if n["kind"] == "param"]
    assert sorted(n["label"] for n in params) == ["blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc1.weight"]
    linear = next(n for n in shown["nodes"] if n["kind"] == "op")
    assert [s["shape"] for s in linear["shapes_in"]] == [[1, 8], [16, 8], [16]]
    assert linear["params"] == 8 * 16 + 16


def test_repeated_blocks_share_a_signature() -> None:
    gpt2 = model("gpt2")
    sigs = signatures(gpt2)
    blocks = {sigs[f"transformer.h.{i}"] for i in range(3)}
    assert len(blocks) == 1
    view = answer("gpt2", "transformer")
    h = [n for n in view["nodes"] if n["path"].startswith("transformer.h.") and n["kind"] == "module"]
    assert len(h) == 3 and all(n["repeats"] == 3 and n["children"] > 0 for n in h)
    assert by_id(view)["m:transformer.wte#0"]["signature"] != h[0]["signature"]


def test_weight_statistics_are_pooled_exactly() -> None:
    m = model("nested")
    facts = module_facts(m)
    stats = facts.stats(tensor_table(m), facts.subtree_params["blocks.0.mlp"])
    assert stats is not None
    flat = torch.cat([p.detach().double().flatten() for p in m.blocks[0].mlp.parameters()])
    assert stats["std"] == pytest.approx(flat.std().item(), rel=1e-5)
    assert stats["abs_mean"] == pytest.approx(abs(flat.mean().item()), rel=1e-5, abs=1e-9)
    assert stats["zero_fraction"] == (flat == 0).double().mean().item()
    assert pool([(1, 2.0, None, 2.0, 0)])["std"] is None
    assert facts.params[""] == sum(p.numel() for p in m.parameters())


def test_search_finds_modules_and_ops_with_what_to_expand() -> None:
    res = search(captured("gpt2"), "c_attn", facts("gpt2"))
    mods = [m for m in res["matches"] if m["kind"] == "module"]
    assert [m["path"] for m in mods] == [f"transformer.h.{i}.attn.c_attn" for i in range(3)]
    assert [r["path"] for r in mods[1]["reveal"]] == ["transformer", "transformer.h.1", "transformer.h.1.attn"]
    ops = search(captured("gpt2"), "scaled_dot", facts("gpt2"))["matches"]
    assert len(ops) == 3 and all(o["kind"] == "op" for o in ops)
    assert ops[0]["reveal"][-1]["path"] == "transformer.h.0.attn"
    assert search(captured("gpt2"), "  ", facts("gpt2"))["matches"] == []
