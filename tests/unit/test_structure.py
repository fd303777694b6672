"""Structure views against torch itself, on the fixture zoo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.fixtures import models as zoo
from torchscope import examples
from torchscope.inspect import structure
from torchscope.inspect.errors import InvalidRequest, NotFound

ZOO = [
    zoo.TiedEmbeddingLM,
    zoo.SharedBlockTwice,
    zoo.PartlyFrozen,
    zoo.Containers,
    zoo.BufferKinds,
    zoo.LazyNet,
    zoo.HalfPrecision,
    zoo.PlainTensorAttr,
    zoo.PlainListOfLayers,
    zoo.DeepNested,
    examples.TinyTransformerLM,
    examples.SmallCNN,
    examples.ListVsModuleList,
]


def torch_numel(t: torch.Tensor) -> int:
    return 0 if isinstance(t, nn.parameter.UninitializedTensorMixin) else t.numel()


@pytest.mark.parametrize("factory", ZOO, ids=lambda f: f.__name__)
def test_summary_equals_torch(factory: type[nn.Module]) -> None:
    model = factory()
    s = structure.summary(model)
    params = list(model.parameters())
    assert s["modules"] == len(list(model.named_modules()))
    assert s["children"] == len(list(model.children()))
    assert s["parameters"]["total"] == sum(torch_numel(p) for p in params)
    assert s["parameters"]["trainable"] == sum(torch_numel(p) for p in params if p.requires_grad)
    assert s["parameters"]["frozen"] == sum(torch_numel(p) for p in params if not p.requires_grad)
    assert s["parameters"]["tensors"] == len(params)
    assert s["parameters"]["bytes"] == sum(torch_numel(p) and p.numel() * p.element_size() for p in params)
    buffers = list(model.buffers())
    persistent_ids = {id(t) for k, t in model.state_dict(keep_vars=True).items()}
    assert s["buffers"]["total"] == sum(b.numel() for b in buffers)
    assert s["buffers"]["persistent"] == sum(b.numel() for b in buffers if id(b) in persistent_ids)
    assert s["buffers"]["non_persistent"] == sum(b.numel() for b in buffers if id(b) not in persistent_ids)
    by_dtype: dict[str, int] = {}
    for p in params:
        key = str(p.dtype).removeprefix("torch.")
        by_dtype[key] = by_dtype.get(key, 0) + torch_numel(p)
    assert s["dtypes"] == by_dtype


@pytest.mark.parametrize("factory", ZOO, ids=lambda f: f.__name__)
def test_every_tree_node_counts_like_torch(factory: type[nn.Module]) -> None:
    model = factory()
    root = structure.tree(model)
    seen = 0

    def check(node: dict, module: nn.Module) -> None:
        nonlocal seen
        seen += 1
        assert node["class"] == type(module).__name__
        assert node["extra_repr"] == module.extra_repr()
        assert node["params_total"] == sum(torch_numel(p) for p in module.parameters())
        assert node["params_own"] == sum(torch_numel(p) for p in module.parameters(recurse=False))
        assert node["buffers_own"] == sum(b.numel() for b in module.buffers(recurse=False))
        assert node["buffers_total"] == sum(b.numel() for b in module.buffers())
        assert node["params_frozen"] == sum(torch_numel(p) for p in module.parameters() if not p.requires_grad)
        # named_children() de-duplicates; the tree shows a shared module at every path
        kids = [(n, m) for n, m in module._modules.items() if m is not None]
        assert node["child_count"] == len(kids)
        assert [c["name"] for c in node["children"]] == [n for n, _ in kids]
        for c, (_, m) in zip(node["children"], kids, strict=True):
            check(c, m)

    check(root, model)
    assert seen == len(list(model.named_modules(remove_duplicate=False)))


def test_tree_paths_are_named_modules_keys() -> None:
    model = examples.NestedNet()
    paths: list[str] = []

    def collect(node: dict) -> None:
        paths.append(node["path"])
        for c in node["children"]:
            collect(c)

    collect(structure.tree(model))
    assert paths == [name for name, _ in model.named_modules()]
    assert "blocks.1.mlp.fc2" in paths


def test_tied_weights_count_once_everywhere() -> None:
    model = zoo.TiedEmbeddingLM()
    assert structure.summary(model)["parameters"]["total"] == 50 * 8 + 8 * 8 + 8
    rows = {r["name"]: r for r in structure.parameters_table(model)}
    assert rows["head.weight"]["shared_with"] == ["embed.weight"]
    assert rows["embed.weight"]["shared_with"] == ["head.weight"]
    assert rows["proj.weight"]["shared_with"] == []


def test_module_reused_at_two_paths_appears_at_both_marked_shared() -> None:
    model = zoo.SharedBlockTwice()
    root = structure.tree(model)
    by_name = {c["name"]: c for c in root["children"]}
    assert set(by_name) == {"first", "middle", "second"}
    assert by_name["first"]["shared"] and by_name["second"]["shared"]
    assert by_name["first"]["shared_with"] == ["second"]
    assert not by_name["middle"]["shared"]
    assert root["params_total"] == 2 * 20 == sum(p.numel() for p in model.parameters())
    flat = structure.modules_flat(model)
    assert flat["named_modules_count"] == len(list(model.named_modules())) == 3
    assert flat["occurrences"] == 4


def test_parameter_and_buffer_tables_follow_torch_order_and_fields() -> None:
    model = zoo.BufferKinds()
    assert [r["name"] for r in structure.buffers_table(model)] == [
        n for n, _ in model.named_buffers(remove_duplicate=False)
    ]
    rows = {r["name"]: r for r in structure.buffers_table(model)}
    assert rows["cache"]["persistent"] is False
    assert rows["scale"]["persistent"] is True
    assert rows["bn.running_mean"]["persistent"] is True
    assert rows["bn.num_batches_tracked"]["dtype"] == "int64"
    assert set(model.state_dict()) >= {n for n, r in rows.items() if r["persistent"]}
    assert "cache" not in model.state_dict()

    model2 = zoo.PartlyFrozen()
    prow = structure.parameters_table(model2)
    assert [r["name"] for r in prow] == [n for n, _ in model2.named_parameters(remove_duplicate=False)]
    for r, (_, p) in zip(prow, model2.named_parameters(), strict=True):
        assert list(r["shape"]) == list(p.shape)
        assert r["requires_grad"] == p.requires_grad
        assert r["numel"] == p.numel()
        assert r["bytes"] == p.numel() * p.element_size()
        assert r["device"] == "cpu"


def test_containers_register_everything() -> None:
    model = zoo.Containers()
    names = [r["name"] for r in structure.parameters_table(model)]
    assert names == [n for n, _ in model.named_parameters()]
    assert "pdict.alpha" in names and "plist.1" in names and "mdict.enc.weight" in names


def test_lazy_parameters_count_zero_and_are_flagged() -> None:
    model = zoo.LazyNet()
    s = structure.summary(model)
    assert s["parameters"]["uninitialized"] == ["lazy.weight", "lazy.bias"]
    assert s["parameters"]["total"] == 5 * 2 + 2
    rows = {r["name"]: r for r in structure.parameters_table(model)}
    assert rows["lazy.weight"]["uninitialized"] and rows["lazy.weight"]["shape"] is None
    model(torch.randn(1, 7))  # materialises: counts follow torch again
    assert structure.summary(model)["parameters"]["total"] == sum(p.numel() for p in model.parameters())


def test_half_precision_dtypes_and_bytes() -> None:
    s = structure.summary(zoo.HalfPrecision())
    assert s["dtypes"] == {"float16": 20, "bfloat16": 10, "float32": 3}
    assert s["dtype_bytes"] == {"float16": 40, "bfloat16": 20, "float32": 12}


def test_meta_device_model_has_shapes_and_no_memory() -> None:
    with torch.device("meta"):
        model = examples.TinyTransformerLM()
    s = structure.summary(model)
    assert s["meta"] is True and s["devices"] == ["meta"]
    assert s["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    rows = structure.parameters_table(model)
    assert all(r["device"] == "meta" for r in rows)
    assert structure.tree(model)["params_total"] == s["parameters"]["total"]


def test_subtree_depth_and_lazy_children() -> None:
    model = examples.SmallCNN()
    shallow = structure.tree(model, depth=1)
    assert [c["children"] for c in shallow["children"]] == [None, None]
    assert shallow["children"][0]["child_count"] == 6
    sub = structure.tree(model, path="features.0", depth=1)
    assert sub["path"] == "features.0"
    assert [c["path"] for c in sub["children"]] == ["features.0.0", "features.0.1", "features.0.2"]
    with pytest.raises(NotFound):
        structure.tree(model, path="features.99")
    with pytest.raises(InvalidRequest):
        structure.tree(model, depth=-1)


def test_search_returns_matches_with_ancestors() -> None:
    model = examples.SmallCNN()
    res = structure.search_tree(model, "BatchNorm")
    assert res["matches"] == ["features.0.1", "features.2.1", "features.4.1"]
    features = res["tree"]["children"][0]
    assert features["path"] == "features"
    assert [c["path"] for c in features["children"]] == ["features.0", "features.2", "features.4"]
    with pytest.raises(InvalidRequest):
        structure.search_tree(model, "  ")


def test_wide_model_with_20000_modules() -> None:
    model = zoo.wide_model(20_000)
    assert structure.summary(model)["modules"] == len(list(model.named_modules()))
    top = structure.tree(model, depth=1)
    assert top["child_count"] == len(model) and all(c["children"] is None for c in top["children"])
    assert top["params_total"] == sum(p.numel() for p in model.parameters())


def test_inspection_never_changes_the_model() -> None:
    model = examples.TinyTransformerLM()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    structure.summary(model)
    structure.tree(model)
    structure.parameters_table(model)
    structure.buffers_table(model)
    structure.modules_flat(model)
    assert model.training is False
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_domain_layer_imports_no_web_framework() -> None:
    root = Path(__file__).resolve().parents[2] / "app" / "inspect"
    paths = sorted(root.rglob("*.py"))
    assert any(p.parent != root for p in paths)  # subpackages (schedules/, checkpoints/) are walked too
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"fastapi", "starlette", "jinja2", "uvicorn"}, (
                    f"{path.name} imports {name}"
                )


def test_max_nodes_adds_whole_levels_only() -> None:
    model = examples.SmallCNN()  # root -> 2 children -> 9 grandchildren -> 9 great-grandchildren
    assert structure.tree(model, max_nodes=1)["children"] is None
    two = structure.tree(model, max_nodes=5)
    assert [c["children"] for c in two["children"]] == [None, None]
    three = structure.tree(model, depth=5, max_nodes=12)
    assert all(isinstance(c["children"], list) for c in three["children"])
    assert all(g["children"] is None for c in three["children"] for g in c["children"])
    wide = structure.tree(zoo.wide_model(2_000), depth=2, max_nodes=400)
    assert wide["children"] is None  # 499 children would already exceed 400 nodes


def test_tree_nodes_name_their_tied_parameters() -> None:
    root = structure.tree(zoo.TiedEmbeddingLM())
    by_name = {c["name"]: c for c in root["children"]}
    assert by_name["head"]["tied"] == {"weight": ["embed.weight"]}
    assert by_name["embed"]["tied"] == {"weight": ["head.weight"]}
    assert "tied" not in by_name["proj"]
    assert "tied" not in structure.tree(examples.SmallCNN())


def test_tree_nodes_list_their_own_tensors() -> None:
    root = structure.tree(zoo.BufferKinds())
    assert root["tensors"] == ["scale", "cache"]
    (bn,) = root["children"]
    assert bn["tensors"] == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert "tensors" not in structure.tree(examples.SmallCNN())  # no tensors of its own


class TwiceInOneModule(nn.Module):
    """One Parameter and one buffer each registered under two names of the same module."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(9))
        self.register_parameter("w_alias", self.w)
        self.register_buffer("b", torch.zeros(4))
        self.register_buffer("b_alias", self.b)
        self.child = nn.Linear(2, 2)


def test_own_counts_count_a_tensor_once_like_the_totals() -> None:
    model = TwiceInOneModule()
    root = structure.tree(model)
    # torch: parameters() and buffers() de-duplicate by identity
    assert sum(p.numel() for p in model.parameters()) == 9 + 6
    assert root["params_own"] == 9 and root["buffers_own"] == 4  # was 18 and 8
    assert root["params_total"] == 15 and root["buffers_total"] == 4
    assert root["params_own"] <= root["params_total"]
