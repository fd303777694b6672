"""The forward pass on fake tensors, checked against torch itself: a real forward with hooks, FlopCounterMode."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.fixtures import models as fx
from torchscope.examples import EXAMPLES
from torchscope.inspect.forward import ForwardFailed, resolve_inputs, run_forward
from torchscope.inspect.forward.record import describe
from torchscope.inspect.forward.sources import ResolvedInputs
from torchscope.inspect.forward.spec import build_values, random_tensor
from torchscope.inspect.loader import build, parse_spec


def real_values(resolved: ResolvedInputs, seed: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if resolved.values is not None:
        return resolved.values
    g = torch.Generator().manual_seed(seed)
    return build_values(resolved.spec, lambda s: random_tensor(s, torch.device("cpu"), g))


def real_calls(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[tuple[str, str, Any]], int]:
    """(path, class, outputs) per call in call order, from a real forward with plain hooks; and its FLOPs."""
    paths = {id(m): p for p, m in model.named_modules()}
    rows: list[list[Any]] = []
    open_rows: list[list[Any]] = []

    def pre(m: nn.Module, a: Any) -> None:
        row = [paths[id(m)], type(m).__name__, None]
        rows.append(row)
        open_rows.append(row)

    def post(m: nn.Module, a: Any, out: Any) -> None:
        open_rows.pop()[2] = describe(out)

    hooked = [m for m in model.modules() if not isinstance(m, torch.jit.ScriptModule)]  # those take no hooks
    handles = [h for m in hooked for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with FlopCounterMode(display=False) as counter:
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return [tuple(r) for r in rows], counter.get_total_flops()  # type: ignore[misc]


def state(model: nn.Module) -> dict[str, Any]:
    """Everything that must be bit-identical after a forward request."""
    return {
        "tensors": {k: v.clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "rng": torch.get_rng_state(),
        "dicts": [sorted(vars(m)) for m in model.modules()],
    }


def assert_same_state(before: dict[str, Any], model: nn.Module) -> None:
    after = state(model)
    assert before["tensors"].keys() == after["tensors"].keys()
    for k, v in before["tensors"].items():
        w = after["tensors"][k]
        assert type(w) is type(v) and w.dtype == v.dtype and w.device == v.device, k
        assert torch.equal(v, w) if not v.is_meta else v.shape == w.shape, k
    assert before["training"] == after["training"]
    assert torch.equal(before["rng"], after["rng"])
    assert before["dicts"] == after["dicts"]


def check_against_real(model: nn.Module, resolved: ResolvedInputs) -> dict[str, Any]:
    before = state(model)
    answer = run_forward(model, resolved).to_dict()
    assert_same_state(before, model)
    args, kwargs = real_values(resolved)
    real, flops = real_calls(model, args, kwargs)
    assert [(c["path"], c["class"], c["outputs"]) for c in answer["calls"]] == real
    assert answer["totals"]["flops"] == flops
    return answer


@pytest.mark.parametrize(("name", "spec"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_every_builtin_example_matches_a_real_forward(name: str, spec: str) -> None:
    model = build(parse_spec(spec))
    answer = check_against_real(model, resolve_inputs(model))
    assert answer["mode"] == "fake" and answer["source"] == "inferred"


def test_resnet_like_cnn_matches_and_counts_calls_of_a_reused_relu() -> None:
    model = fx.ResNetLike()
    answer = check_against_real(model, resolve_inputs(model, given=[[2, 3, 32, 32]]))
    relu = [c for c in answer["calls"] if c["path"] == "layer2.0.relu"]
    assert [c["call"] for c in relu] == [0, 1]  # the same ReLU module, twice per block
    fc = next(c for c in answer["calls"] if c["path"] == "fc")
    assert fc["outputs"] == {"shape": [2, 10], "dtype": "float32"}
    assert fc["flops"] == 2 * 2 * 16 * 10  # 2 FLOPs per multiply-add, batch 2, 16 -> 10


def test_module_called_twice_and_in_a_loop_gets_a_row_per_call() -> None:
    model = fx.CalledTwice()
    answer = check_against_real(model, resolve_inputs(model))
    order = [(c["path"], c["call"], c["depth"]) for c in answer["calls"]]
    assert order == [("", 0, 0), ("shared", 0, 1), ("shared", 1, 1), ("loop", 0, 1), ("loop", 1, 1), ("loop", 2, 1), ("out", 0, 1)]
    root = answer["calls"][0]
    assert root["flops_total"] == sum(c["flops_total"] for c in answer["calls"][1:]) + root["flops"]


def test_gpt2_like_lm_with_tied_weights_keeps_model_output_structure() -> None:
    model = fx.tiny_gpt2()
    resolved = resolve_inputs(model)
    assert resolved.source == "inferred" and resolved.to_json()["kwargs"]["input_ids"] == {
        "shape": [1, 16], "dtype": "int64", "low": 0, "high": 97,
    }  # fmt: skip
    answer = check_against_real(model, resolved)
    out = answer["calls"][0]["outputs"]
    assert out["type"] == "CausalLMOutputWithCrossAttentions"
    assert out["items"]["logits"] == {"shape": [1, 16, 97], "dtype": "float32"}
    # lm_head and wte share one tensor: counted once in the parameter bytes
    n = sum(p.numel() for p in model.parameters())
    assert answer["totals"]["param_bytes"] == 4 * n


def test_llama_like_lm_matches_with_callable_inputs() -> None:
    model = fx.tiny_llama()
    values = fx.make_token_inputs(model)
    from torchscope.inspect.forward.sources import Source
    from torchscope.inspect.forward.spec import spec_of_values

    resolved = ResolvedInputs(spec_of_values((), values), Source.cli, "test", ((), values))
    answer = check_against_real(model, resolved)
    assert answer["inputs"]["kwargs"]["input_ids"] == {"shape": [2, 8], "dtype": "int64", "low": 0, "high": 16}


def test_kwargs_only_and_dict_returning_models() -> None:
    model = fx.KwargsOnly()
    resolved = resolve_inputs(model, given={"kwargs": {"x": {"shape": [2, 5]}, "mask": {"shape": [2]}}})
    answer = check_against_real(model, resolved)
    assert answer["calls"][0]["inputs"]["kwargs"]["mask"] == {"shape": [2], "dtype": "float32"}
    model2 = fx.DictOutput()
    answer = check_against_real(model2, resolve_inputs(model2))
    out = answer["calls"][0]["outputs"]
    assert out["type"] == "dict" and out["items"]["n"] == {"type": "int", "repr": "3"}
    assert out["items"]["hidden"] == {"type": "tuple", "items": [{"shape": [1, 8], "dtype": "float32"}, {"shape": [1], "dtype": "float32"}]}
    assert answer["calls"][0]["output_bytes"] == 4 * (3 + 8 + 1)


def test_a_shape_bug_is_named_where_it_happens_with_torchs_message() -> None:
    model = fx.ShapeBug()
    with pytest.raises(ForwardFailed) as info:
        run_forward(model, resolve_inputs(model, given=[[1, 20, 40]]))
    err = info.value
    assert err.status == 422
    assert err.extra["path"] == "fc1" and err.extra["class"] == "Linear" and err.extra["call"] == 0
    assert err.extra["module_inputs"]["args"] == [{"shape": [1, 800], "dtype": "float32"}]
    assert err.extra["error"] == "mat1 and mat2 shapes cannot be multiplied (1x800 and 784x10)"
    assert "`fc1` (Linear, call 0) with inputs ([1, 800])" in err.message
    states = [(c["path"], c.get("state", "done")) for c in err.extra["calls"]]
    assert states == [("", "failed"), ("flatten", "done"), ("fc1", "failed")]


def test_a_shape_bug_in_a_big_model_is_named_from_the_fake_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchscope.inspect.forward import run as run_module

    monkeypatch.setattr(run_module, "MAX_REAL_BYTES", 0)  # as if the model were too big to copy
    with pytest.raises(ForwardFailed) as info:
        run_forward(fx.ShapeBug(), resolve_inputs(fx.ShapeBug(), given=[[1, 20, 40]]))
    assert info.value.extra["mode"] == "fake" and info.value.extra["path"] == "fc1"
    assert "[1, 800]" in info.value.extra["error"] and "784" in info.value.extra["error"]


def test_an_op_fake_tensors_cannot_run_falls_back_to_a_real_forward_on_a_copy() -> None:
    model = fx.NeedsValues()
    before = state(model)
    answer = run_forward(model, resolve_inputs(model)).to_dict()
    assert_same_state(before, model)
    assert answer["mode"] == "real"
    assert any("fake tensors could not run" in w and ".item()" in w for w in answer["warnings"])
    assert answer["calls"][1]["outputs"] == {"shape": [1, 4], "dtype": "float32"}


def test_side_effects_of_forward_never_reach_the_served_model() -> None:
    model = fx.SideEffects()
    before = state(model)
    calls_before = model.calls.clone()
    answer = run_forward(model, resolve_inputs(model, given=[[4, 3]])).to_dict()
    assert_same_state(before, model)
    assert torch.equal(model.calls, calls_before)  # the in-place += 1 hit a fake copy
    assert not hasattr(model, "last_input") and model.training
    assert model.bn.num_batches_tracked.item() == 0
    assert answer["calls"][0]["outputs"] == {"shape": [4, 3], "dtype": "float32"}


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_fakes_of_parameters_are_parameters_and_of_buffers_are_not(device: str) -> None:
    from torch._subclasses.fake_tensor import FakeTensor

    from torchscope.inspect.forward.fake import fake_forward

    with torch.device(device):
        model = nn.BatchNorm1d(3)
    with fake_forward(model) as ctx:
        # torch.export's verifier checks this of every state dict entry (issue 11)
        assert isinstance(ctx.module.weight, nn.Parameter) and isinstance(ctx.module.weight, FakeTensor)
        assert ctx.module.weight.requires_grad and ctx.module.weight.device.type == "cpu"
        assert isinstance(ctx.module.running_mean, FakeTensor)
        assert not isinstance(ctx.module.running_mean, nn.Parameter)
    assert type(model.weight) is nn.Parameter and not isinstance(model.running_mean, FakeTensor)


def test_a_torchscript_submodule_runs_on_a_copy_and_never_writes_the_served_one() -> None:
    model = fx.ScriptedNorm()
    before = state(model)
    resolved = resolve_inputs(model, given=[[4, 3]])
    answer = run_forward(model, resolved, allow_real=False).to_dict()
    assert_same_state(before, model)
    assert model.bn.num_batches_tracked.item() == 0  # the scripted BatchNorm's C++ buffers: not touched
    assert answer["mode"] == "fake"
    # a ScriptModule takes no Python hooks: no row of its own, its FLOPs count in the model's call
    real, flops = real_calls(model, *real_values(resolved))
    assert [(c["path"], c["class"], c["outputs"]) for c in answer["calls"]] == real
    assert answer["totals"]["flops"] == flops


def test_meta_models_are_counted_as_a_cpu_fake_forward() -> None:
    with torch.device("meta"):
        meta = fx.tiny_gpt2()
    cpu = fx.tiny_gpt2()
    before = state(meta)
    ids = {"kwargs": {"input_ids": {"shape": [1, 16], "dtype": "int64", "low": 0, "high": 97}}}
    on_meta = run_forward(meta, resolve_inputs(meta, given=ids)).to_dict()
    assert_same_state(before, meta)
    on_cpu = run_forward(cpu, resolve_inputs(cpu, given=ids)).to_dict()
    assert on_meta["device"] == "cpu" and on_meta["mode"] == "fake"
    assert on_meta["totals"]["flops"] == on_cpu["totals"]["flops"]
    assert [c["outputs"] for c in on_meta["calls"]] == [c["outputs"] for c in on_cpu["calls"]]
    assert any("meta device" in w for w in on_meta["warnings"])


def test_lazy_modules_run_on_a_copy_and_stay_uninitialized() -> None:
    model = fx.LazyNet()
    answer = run_forward(model, resolve_inputs(model, given=[[2, 7]])).to_dict()
    assert answer["calls"][1]["outputs"] == {"shape": [2, 5], "dtype": "float32"}
    assert answer["mode"] == "real" and any("stays uninitialized" in w for w in answer["warnings"])
    assert isinstance(model.lazy, nn.LazyLinear) and model.lazy.has_uninitialized_params()


def test_totals_and_training_memory_estimate() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    model[2].weight.requires_grad_(False)
    answer = run_forward(model, resolve_inputs(model, given=[[4, 10]])).to_dict()
    t = answer["totals"]
    assert t["flops"] == 2 * 4 * (10 * 20 + 20 * 5) and t["macs"] == t["flops"] // 2
    assert t["param_bytes"] == 4 * (10 * 20 + 20 + 20 * 5 + 5)
    trainable = 4 * (10 * 20 + 20 + 5)
    assert t["trainable_param_bytes"] == trainable
    tb = t["training_bytes"]
    assert tb["optimizer_state"] == {"sgd": 0, "sgd_momentum": trainable, "adam": 2 * trainable, "adamw": 2 * trainable}
    assert tb["total"]["adam"] == t["param_bytes"] + trainable + 2 * trainable + t["activation_bytes"]
    # autograd keeps the input of the first Linear and the ReLU's output for the backward
    assert t["activation_bytes"] == 4 * (4 * 10 + 4 * 20)
    assert t["output_bytes"] == 4 * (4 * 20 + 4 * 20 + 4 * 5)


def test_the_served_model_is_not_touched_even_while_the_forward_runs() -> None:
    model = fx.ResNetLike()
    seen: list[tuple[bool, int, int, bool]] = []

    def user_hook(m: nn.Module, args: Any, out: Any) -> None:
        # runs on the shadow, during the fake forward: the served model has its own tensors and hooks only
        seen.append((m is model, len(model._forward_hooks), len(model._forward_pre_hooks), type(model.fc.weight) is nn.Parameter))

    model.register_forward_hook(user_hook)
    run_forward(model, resolve_inputs(model, given=[[1, 3, 16, 16]]))
    assert seen == [(False, 1, 0, True)]


def test_values_are_described_as_structure() -> None:
    import dataclasses
    from collections import namedtuple

    @dataclasses.dataclass
    class Out:
        logits: torch.Tensor
        extra: Any = None

    Pair = namedtuple("Pair", ["a", "b"])
    t = torch.zeros(2, 3, dtype=torch.float16)
    assert describe(Out(t)) == {"type": "Out", "items": {"logits": {"shape": [2, 3], "dtype": "float16"}, "extra": None}}
    assert describe(Pair(t, 1.5)) == {"type": "Pair", "items": {"a": {"shape": [2, 3], "dtype": "float16"}, "b": {"type": "float", "repr": "1.5"}}}
    assert describe([t] * 40)["more"] == 8 and len(describe([t] * 40)["items"]) == 32
    assert describe(object())["type"] == "object" and len(describe("x" * 500)["repr"]) == 80
    nested: Any = t
    for _ in range(10):
        nested = [nested]
    assert "…" in str(describe(nested))  # depth-limited
