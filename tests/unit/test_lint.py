"""Lint findings: each kind, found anywhere in the tree, with its fix; none on clean models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.fixtures import models as zoo
from torchscope import examples
from torchscope.inspect.lint import lint


def kinds(model: nn.Module) -> list[tuple[str, str]]:
    return [(f["kind"], f["path"]) for f in lint(model)]


def test_plain_tensor_attribute_is_unregistered() -> None:
    model = zoo.PlainTensorAttr()
    assert "offset" not in dict(model.named_parameters()) and "offset" not in model.state_dict()
    findings = lint(model)
    assert [(f["kind"], f["path"]) for f in findings] == [("unregistered_tensor", "offset")]
    assert "nn.Parameter" in findings[0]["fix"] and "register_buffer" in findings[0]["fix"]
    assert "[3]" in findings[0]["message"]


def test_plain_list_and_dict_of_registrable_things() -> None:
    model = zoo.PlainListOfLayers()
    found = {f["path"]: f for f in lint(model)}
    assert set(found) == {"layers", "extra"}
    assert found["layers"]["kind"] == "plain_container" and "nn.ModuleList" in found["layers"]["fix"]
    assert "12 parameters" in found["layers"]["message"]  # two Linear(2, 2): invisible to parameters()
    assert found["extra"]["kind"] == "plain_container" and "nn.ParameterDict" in found["extra"]["fix"]
    # ground truth: torch does not see them
    assert sum(p.numel() for p in model.parameters()) == 6


def test_findings_deep_in_the_tree_carry_the_full_path() -> None:
    assert kinds(zoo.DeepNested()) == [("unregistered_tensor", "outer.0.0.offset")]


def test_tensors_in_a_plain_list_are_reported() -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stats = [torch.zeros(2), torch.ones(2)]

    (f,) = lint(Holder())
    assert f["kind"] == "plain_container" and "register_buffer" in f["fix"]


@pytest.mark.parametrize(
    "factory",
    [examples.TinyTransformerLM, examples.SmallCNN, examples.NestedNet, examples.conv_bn_block, zoo.Containers,
     zoo.BufferKinds, zoo.TiedEmbeddingLM, zoo.LazyNet, zoo.SharedBlockTwice],
    ids=lambda f: f.__name__,
)
def test_clean_models_have_no_findings(factory: type[nn.Module]) -> None:
    assert lint(factory()) == []


def test_examples_teach_their_lessons() -> None:
    assert kinds(examples.TensorVsParameter()) == [("unregistered_tensor", "with_tensor.scale")]
    assert kinds(examples.ListVsModuleList()) == [("plain_container", "plain_list.layers")]


def test_dict_subclass_of_modules_suggests_module_dict() -> None:
    from collections import OrderedDict

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = OrderedDict(a=nn.Linear(2, 2))

    (f,) = lint(Heads())
    assert f["kind"] == "plain_container" and f["fix"] == "self.heads = nn.ModuleDict(...)"
    assert "plain Python dict" in f["message"]


class ShortcutList(nn.Module):
    """A plain list that only re-points at layers registered in a ModuleList (issue 12: not a finding)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        self.first_two = [self.blocks[0], self.blocks[1]]
        self.scale = nn.Parameter(torch.ones(1))
        self.params_view = {"scale": self.scale}
        self.mixed = [self.blocks[2], nn.Linear(2, 3)]  # one registered, one not


def test_containers_of_registered_modules_are_not_findings() -> None:
    model = ShortcutList()
    found = {f["path"]: f for f in lint(model)}
    assert set(found) == {"mixed"}  # first_two and params_view only point at registered things
    # only the unregistered Linear(2, 3) is counted: 9 parameters that parameters() lacks
    assert "1 module(s) (Linear)" in found["mixed"]["message"] and "9 parameters" in found["mixed"]["message"]
    registered = {id(p) for p in model.parameters()}
    assert all(id(p) in registered for m in model.first_two for p in m.parameters())  # ground truth
    assert not any(id(p) in registered for p in model.mixed[1].parameters())
