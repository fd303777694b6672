"""The init lab against torch itself: same generator seed, same numbers; refusals change nothing."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from tests.fixtures.models import BufferKinds, HalfPrecision, LazyNet, SharedBlockTwice
from torchscope.examples import SmallCNN, TinyTransformerLM, TwoLayerNet
from torchscope.inspect import initlab as L
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.initlab.distributions import _fan
from torchscope.inspect.initlab.resolution import _fit
from torchscope.inspect.registry import LoadedModel


def plan(*rules: dict[str, Any], seed: int = 0) -> L.Plan:
    return L.parse_plan({"rules": list(rules), "seed": seed})


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict(keep_vars=False).items()}


def assert_same(module: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = module.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(after[k], before[k]), k


# ------------------------------------------------------------------ catalogue


def test_catalogue_is_read_from_torch_nn_init() -> None:
    cat = L.catalogue()
    public = {
        n for n, f in inspect.getmembers(nn.init, inspect.isfunction)
        if n.endswith("_") and not n.startswith("_") and f.__module__ == "torch.nn.init"
    }  # fmt: skip
    assert public <= set(cat) and L.DEFAULT_SCHEME in cat
    for name in public:
        sig = inspect.signature(getattr(nn.init, name))
        expected = [p for p in list(sig.parameters)[1:] if p != "generator"]
        assert [a.name for a in cat[name].args] == expected
        for a in cat[name].args:
            default = sig.parameters[a.name].default
            assert a.required == (default is inspect.Parameter.empty)
            if not a.required:
                assert a.default == default
    kaiming = {a.name: a for a in cat["kaiming_normal_"].args}
    assert kaiming["mode"].choices == ("fan_in", "fan_out")
    assert "relu" in (kaiming["nonlinearity"].choices or ())
    assert cat["sparse_"].to_dict()["args"][0] == {
        "name": "sparsity", "type": "float", "default": None, "required": True, "choices": None,
    }  # fmt: skip


def test_gains_equal_calculate_gain() -> None:
    gains = L.gains()
    assert set(gains) == set(L.nonlinearities())
    for nl, g in gains.items():
        assert g == nn.init.calculate_gain(nl)  # type: ignore[arg-type]
    assert gains["relu"] == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize(
    ("fn", "ranks_ok", "ranks_bad"),
    [
        ("xavier_uniform_", [2, 3, 4], [1]),
        ("kaiming_normal_", [2, 4], [1]),
        ("orthogonal_", [2, 3], [1]),
        ("eye_", [2], [1, 3]),
        ("sparse_", [2], [1, 3]),
        ("dirac_", [3, 4, 5], [2, 6]),
    ],
)
def test_rank_overrides_agree_with_torch(
    fn: str, ranks_ok: list[int], ranks_bad: list[int]
) -> None:
    scheme = L.catalogue()[fn]
    args = {"sparsity": 0.5} if fn == "sparse_" else {}
    for rank in ranks_ok:
        t = torch.empty(*([4] * rank))
        assert _fit(scheme, t, args, nn.Linear(1, 1)) is None
        getattr(nn.init, fn)(t, **args)  # torch agrees: no error
    for rank in ranks_bad:
        t = torch.empty(*([4] * rank))
        assert _fit(scheme, t, args, nn.Linear(1, 1)) is not None
        with pytest.raises((ValueError, RuntimeError)):
            getattr(nn.init, fn)(t, **args)


def test_orthogonal_on_half_is_refused_because_torch_refuses_it() -> None:
    with pytest.raises(NotImplementedError):
        nn.init.orthogonal_(torch.empty(3, 3, dtype=torch.float16))
    model = HalfPrecision()
    before = snapshot(model)
    with pytest.raises(InvalidRequest) as err:
        L.resolve(model, plan({"match": "a.weight", "fn": "orthogonal_"}))
    assert err.value.extra["rule"] == 0 and err.value.extra["tensor"] == "a.weight"
    assert "float16" in err.value.message
    assert_same(model, before)


def test_fan_matches_torch() -> None:
    for shape in [(3, 4), (8, 3, 5, 5), (2, 6, 3)]:
        t = torch.empty(shape)
        assert _fan(t) == nn.init._calculate_fan_in_and_fan_out(t)


# --------------------------------------------------------- seeded determinism


CALLS = [
    ("uniform_", {"a": -0.5, "b": 2.0}),
    ("normal_", {"mean": 1.0, "std": 0.3}),
    ("trunc_normal_", {"std": 0.02, "a": -0.04, "b": 0.04}),
    ("xavier_uniform_", {"gain": 2.0}),
    ("xavier_normal_", {}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("orthogonal_", {"gain": 0.5}),
    ("sparse_", {"sparsity": 0.3, "std": 0.1}),
    ("constant_", {"val": 0.25}),
    ("eye_", {}),
    ("zeros_", {}),
]


@pytest.mark.parametrize(("fn", "args"), CALLS)
def test_each_function_equals_torch_called_with_the_same_seeded_generator(
    fn: str, args: dict[str, Any]
) -> None:
    model = TwoLayerNet()
    seed = 1234
    p = plan({"match": "fc1.weight", "fn": fn, "args": args}, seed=seed)
    preview = L.preview(model, p)
    expected = model.fc1.weight.detach().clone()
    kwargs = dict(args)
    if L.catalogue()[fn].takes_generator:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    if L.catalogue()[fn].global_rng:  # sparse_ also calls torch.randperm without generator=
        sub = int(torch.randint(0, L.MAX_SEED, (1,), generator=kwargs["generator"]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sub)
            getattr(nn.init, fn)(expected, **kwargs)
    else:
        getattr(nn.init, fn)(expected, **kwargs)
    loaded = LoadedModel("m", "m", "m", model)
    L.apply(loaded, p)
    assert torch.equal(model.fc1.weight, expected)
    (tp,) = preview.tensors
    assert tp.after.stats.mean == pytest.approx(
        expected.double().mean().item(), rel=1e-9, abs=1e-12
    )


def test_same_plan_same_seed_same_numbers_and_seed_matters() -> None:
    p = plan(
        {"match": "Linear", "tensor": "weight", "fn": "xavier_normal_"},
        {"match": "*.bias", "fn": "normal_"},
    )
    a = L.preview(TwoLayerNet(), p).to_dict()
    b = L.preview(TwoLayerNet(), p).to_dict()
    for ta, tb in zip(a["tensors"], b["tensors"], strict=True):
        assert ta["after"] == tb["after"]
    other = L.preview(TwoLayerNet(), plan(*[r.to_dict() for r in p.rules], seed=1)).to_dict()
    assert other["tensors"][0]["after"]["counts"] != a["tensors"][0]["after"]["counts"]


def test_draw_order_is_named_modules_preorder_with_one_generator() -> None:
    model = TwoLayerNet()
    p = plan({"match": "*", "fn": "normal_"}, seed=7)
    L.apply(LoadedModel("m", "m", "m", model), p)
    g = torch.Generator().manual_seed(7)
    ref = TwoLayerNet()
    for name in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]:
        t = ref.get_parameter(name).detach()
        nn.init.normal_(t, generator=g)
        assert torch.equal(model.get_parameter(name), t), name


@pytest.mark.parametrize(
    ("fn", "args"), [("kaiming_normal_", {"nonlinearity": "relu"}), ("xavier_uniform_", {})]
)
def test_std_matches_theory_on_a_large_tensor(fn: str, args: dict[str, Any]) -> None:
    model = nn.Linear(1000, 800)
    (tp,) = L.preview(model, plan({"match": "weight", "fn": fn, "args": args})).tensors
    assert tp.theory is not None
    theory_std = tp.theory["std"]
    fan_in, fan_out = 1000, 800
    if fn == "kaiming_normal_":
        assert theory_std == pytest.approx(math.sqrt(2) / math.sqrt(fan_in))
    else:
        assert theory_std == pytest.approx(math.sqrt(2 / (fan_in + fan_out)))
        assert tp.theory["high"] == pytest.approx(math.sqrt(6 / (fan_in + fan_out)))
    assert tp.after.stats.std == pytest.approx(theory_std, rel=0.01)
    # expected counts over the observed range: all but the far tails of the theory
    assert tp.expected is not None and sum(tp.expected) == pytest.approx(800_000, rel=1e-4)


def test_pytorch_default_is_reset_parameters_seeded_through_a_sub_seed() -> None:
    model = SmallCNN()
    p = plan({"match": "Linear", "fn": "default"}, seed=5)
    L.apply(LoadedModel("m", "m", "m", model), p)
    g = torch.Generator().manual_seed(5)
    sub = int(torch.randint(0, L.MAX_SEED, (1,), generator=g))
    ref = nn.Linear(64, 10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sub)
        ref.reset_parameters()
    assert torch.equal(model.get_parameter("classifier.2.weight"), ref.weight)
    assert torch.equal(model.get_parameter("classifier.2.bias"), ref.bias)


def test_default_on_a_module_without_reset_parameters_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="reset_parameters"):
        L.resolve(TinyTransformerLM(), plan({"match": "pos_emb", "fn": "default"}))


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("rules", "field_or_reason"),
    [
        ([{"match": "Linear", "tensor": "bias", "fn": "xavier_uniform_"}], "needs a >= 2-D"),
        ([{"match": "*num_batches_tracked", "fn": "normal_"}], "int64"),
        ([{"match": "Conv3d", "fn": "zeros_"}], "selects no tensor"),
        ([{"match": "Linear", "fn": "magic_"}], "unknown init function"),
        ([{"match": "Linear", "fn": "normal_", "args": {"sigma": 1}}], "no argument 'sigma'"),
        ([{"match": "Linear", "fn": "constant_"}], "needs argument 'val'"),
        (
            [{"match": "Linear", "fn": "kaiming_normal_", "args": {"mode": "fan_both"}}],
            "not one of",
        ),
        ([{"match": "Linear", "fn": "normal_", "args": {"std": "big"}}], "must be a number"),
        ([{"match": "Linear", "fn": "normal_", "args": {"std": -1}}], "std must be >= 0"),
        ([{"match": "Linear", "tensor": "weights", "fn": "zeros_"}], "tensor must be one of"),
        ([{"match": "", "fn": "zeros_"}], "match must be"),
    ],
)
def test_refused_plans_name_rule_and_change_nothing(
    rules: list[dict[str, Any]], field_or_reason: str
) -> None:
    model = SmallCNN()
    loaded = LoadedModel("m", "m", "m", model)
    before = snapshot(model)
    ok_rule = {"match": "*.bias", "fn": "zeros_"}
    with pytest.raises(InvalidRequest) as err:
        L.apply(loaded, L.parse_plan({"rules": [ok_rule, *rules], "seed": 0}))
    assert field_or_reason in err.value.message
    assert err.value.extra["rule"] == 1 and err.value.message.startswith("rule 1:")
    assert_same(model, before)
    assert not loaded.modified


def test_later_rules_win_so_an_overridden_misfit_is_fine() -> None:
    model = TwoLayerNet()
    p = plan({"match": "*", "fn": "xavier_uniform_"}, {"match": "*.bias", "fn": "zeros_"})
    L.apply(LoadedModel("m", "m", "m", model), p)
    assert torch.count_nonzero(model.fc1.bias) == 0 and torch.count_nonzero(model.fc1.weight) > 0


@pytest.mark.parametrize(
    "bad", [[], {"rules": []}, {"rules": [], "seed": -1}, {"rules": [{}], "seed": 1.5}, {"x": 1}]
)
def test_malformed_plans(bad: Any) -> None:
    with pytest.raises(InvalidRequest):
        L.parse_plan(bad)


def test_lazy_tensors_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="lazy"):
        L.resolve(LazyNet(), plan({"match": "lazy.weight", "fn": "normal_"}))


# ----------------------------------------------- preview, apply, reset, snippet


def test_preview_never_changes_the_model() -> None:
    model = BufferKinds()
    before = snapshot(model)
    prev = L.preview(
        model, plan({"match": "*", "tensor": "all", "fn": "constant_", "args": {"val": 3}})
    )
    assert {t.name for t in prev.tensors} >= {
        "bn.weight",
        "bn.running_mean",
        "bn.num_batches_tracked",
    }
    assert_same(model, before)
    nbt = next(t for t in prev.tensors if t.name == "bn.num_batches_tracked")
    assert nbt.after.stats.mean == 3 and nbt.after.dtype == "int64"


def test_apply_then_reset_is_bit_exact() -> None:
    model = TinyTransformerLM()
    loaded = LoadedModel("m", "m", "m", model)
    before = snapshot(model)
    L.apply(loaded, plan({"match": "*", "tensor": "weight", "fn": "normal_", "args": {"std": 5.0}}))
    assert not torch.equal(model.tok_emb.weight, before["tok_emb.weight"])
    assert model.lm_head.weight is model.tok_emb.weight  # still tied: written in place
    L.apply(loaded, plan({"match": "*.bias", "fn": "ones_"}))
    L.reset(loaded)
    assert_same(model, before)
    assert torch.equal(
        model.get_buffer("causal_mask"), torch.triu(torch.full((64, 64), float("-inf")), diagonal=1)
    )


def test_tied_weight_is_initialised_once() -> None:
    model = TinyTransformerLM()
    prev = L.preview(model, plan({"match": "lm_head.weight", "fn": "normal_"}))
    (tp,) = prev.tensors
    assert tp.name == "tok_emb.weight" and tp.aliases == ("lm_head.weight",)


@pytest.mark.parametrize(
    "rules",
    [
        [
            {
                "match": "Conv2d",
                "tensor": "weight",
                "fn": "kaiming_normal_",
                "args": {"nonlinearity": "relu"},
            },
            {
                "match": "BatchNorm2d",
                "tensor": "weight",
                "fn": "normal_",
                "args": {"mean": 1.0, "std": 0.02},
            },
            {"match": "*.bias", "fn": "zeros_"},
            {"match": "Linear", "fn": "default"},
        ],
        [
            {
                "match": "features.*",
                "tensor": "weight",
                "fn": "uniform_",
                "args": {"a": -0.1, "b": 0.1},
            }
        ],
        [
            {"match": "Conv2d", "tensor": "weight", "fn": "orthogonal_"},
            {"match": "Linear", "tensor": "weight", "fn": "sparse_", "args": {"sparsity": 0.5}},
        ],
    ],
)
def test_snippet_reproduces_the_applied_plan_exactly(rules: list[dict[str, Any]]) -> None:
    p = plan(*rules, seed=42)
    served = SmallCNN()
    fresh = SmallCNN()
    fresh.load_state_dict(served.state_dict())
    L.apply(LoadedModel("m", "m", "m", served), p)
    namespace: dict[str, Any] = {}
    exec(compile(L.snippet(p), "<snippet>", "exec"), namespace)
    namespace["weights_init"](fresh)
    for (k, a), b in zip(served.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize(
    ("factory", "rules"),
    [
        (TinyTransformerLM, [{"match": "*", "tensor": "weight", "fn": "normal_", "args": {"std": 0.02}},
                             {"match": "Linear", "tensor": "bias", "fn": "uniform_"},
                             {"match": "LayerNorm", "fn": "default"}]),
        (SharedBlockTwice, [{"match": "Linear", "fn": "normal_"}, {"match": "second.bias", "fn": "zeros_"}]),
    ],
)  # fmt: skip
def test_snippet_matches_apply_with_tied_weights_and_shared_modules(
    factory: Callable[[], nn.Module], rules: list[dict[str, Any]]
) -> None:
    p = plan(*rules, seed=3)
    served = factory()
    fresh = factory()
    fresh.load_state_dict(served.state_dict())
    L.apply(LoadedModel("m", "m", "m", served), p)
    namespace: dict[str, Any] = {}
    exec(compile(L.snippet(p), "<snippet>", "exec"), namespace)
    namespace["weights_init"](fresh)
    for (k, a), b in zip(served.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_expected_counts_put_a_point_mass_in_numpys_bin() -> None:
    import numpy as np

    edges = [-1.0, -0.5, 0.0, 0.5, 1.0]
    got = L.expected_counts({"kind": "constant", "value": 0.0}, edges, 10)
    assert got == np.histogram(np.zeros(10), bins=edges)[0].tolist()
    last = L.expected_counts({"kind": "constant", "value": 1.0}, edges, 3)
    assert last == np.histogram(np.ones(3), bins=edges)[0].tolist()
    normal = L.expected_counts({"kind": "normal", "mean": 0.0, "std": 1.0}, edges, 1000)
    assert normal[1] == pytest.approx(normal[2]) and sum(normal) < 1000


def test_class_match_is_isinstance_by_name() -> None:
    model = TinyTransformerLM()
    names = {
        a.row.name
        for a in L.resolve(model, plan({"match": "Linear", "tensor": "weight", "fn": "zeros_"}))
    }
    # out_proj is a NonDynamicallyQuantizableLinear, a subclass of Linear
    assert "blocks.layers.0.self_attn.out_proj.weight" in names
    assert "blocks.layers.0.linear1.weight" in names


def test_preview_densities_equal_numpy_density_and_integrate_to_one() -> None:
    import numpy as np

    from torchscope.inspect.initlab import density

    torch.manual_seed(0)
    values = torch.randn(1000).numpy()
    counts, edges = np.histogram(values, bins=17)
    assert density(counts.tolist(), edges.tolist()) == pytest.approx(np.histogram(values, bins=17, density=True)[0].tolist())
    model = nn.Linear(40, 30)
    plan = L.parse_plan({"rules": [{"match": "Linear", "tensor": "weight", "fn": "normal_", "args": {"std": 5.0}}]})
    t = L.preview(model, plan, bins=16).to_dict()["tensors"][0]
    for h, d in ((t["before"], t["density"]["before"]), (t["after"], t["density"]["after"])):
        widths = np.diff(h["edges"])
        assert float(np.dot(d, widths)) == pytest.approx(1.0)
    # the theory curve is a density over the "after" bins too (counts / (n * width))
    n = sum(t["after"]["counts"])
    assert t["density"]["expected"] == pytest.approx(
        [e / (n * w) for e, w in zip(t["expected"], np.diff(t["after"]["edges"]), strict=True)]
    )
