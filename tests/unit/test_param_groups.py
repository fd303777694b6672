"""Param groups from a model by name globs or module classes: first match wins, everything reported."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.fixtures.models import LazyNet, PartlyFrozen, TiedEmbeddingLM
from torchscope.examples import TwoLayerNet
from torchscope.inspect import param_groups as pg
from torchscope.inspect.errors import InvalidRequest


class NormedMLP(nn.Module):
    """Linear -> LayerNorm -> Linear: the usual 'no weight decay on norms and biases' case."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)
        self.fc2 = nn.Linear(8, 2)


def rules(raw: list[dict[str, object]]) -> list[pg.GroupRule]:
    return pg.parse_rules(raw)


def by_name(m: pg.Membership) -> dict[str, pg.GroupMembers]:
    return {g.name: g for g in m.groups}


def test_globs_classes_and_default_group() -> None:
    model = NormedMLP()
    m = pg.resolve(model, rules([
        {"name": "fc1", "match": ["fc1.*"], "lr": 0.001, "momentum": 0.99},
        {"name": "no_decay", "match": ["*.bias", "LayerNorm"], "weight_decay": 0.0},
    ]))
    g = by_name(m)
    assert g["fc1"].params == ("fc1.weight", "fc1.bias")
    # fc1.bias also matches "*.bias": it stays in the first group and is reported.
    assert g["no_decay"].params == ("norm.weight", "norm.bias", "fc2.bias")
    assert g["default"].params == ("fc2.weight",) and g["default"].is_default
    assert [d.param for d in m.double_matches] == ["fc1.bias"]
    assert m.double_matches[0].groups == ("fc1", "no_decay")
    assert any("fc1.bias matches groups fc1, no_decay" in w for w in m.warnings)
    assert g["fc1"].numel == 4 * 8 + 8
    assert sum(x.count for x in m.groups) == len(list(model.parameters()))


def test_empty_group_is_reported_and_kept() -> None:
    m = pg.resolve(TwoLayerNet(), rules([{"name": "convs", "match": ["Conv2d"]}, {"match": ["fc2.*"]}]))
    assert m.empty_groups == ("convs",)
    assert by_name(m)["convs"].params == ()
    assert any("'convs'" in w and "matches no parameter" in w for w in m.warnings)
    assert [g.name for g in m.groups] == ["convs", "group1", "default"]


def test_no_default_group_when_everything_matched() -> None:
    m = pg.resolve(TwoLayerNet(), rules([{"match": ["*"]}]))
    assert [g.name for g in m.groups] == ["group0"]


def test_class_and_name_prefixes_disambiguate() -> None:
    model = NormedMLP()
    m = pg.resolve(model, rules([{"match": ["class:Linear"]}, {"match": ["name:norm.*"]}]))
    g = by_name(m)
    assert g["group0"].params == ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    assert g["group1"].params == ("norm.weight", "norm.bias")


def test_tied_weights_are_grouped_once() -> None:
    model = TiedEmbeddingLM()
    m = pg.resolve(model, rules([{"match": ["head.*"]}, {"match": ["embed.*"]}]))
    g = by_name(m)
    # named_parameters() yields the shared tensor once, under its first name (embed.weight).
    assert g["group0"].params == ()
    assert g["group1"].params == ("embed.weight",)


def test_torch_param_groups_build_a_real_optimizer_and_change_nothing() -> None:
    model = PartlyFrozen()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m = pg.resolve(model, rules([{"name": "head", "match": ["head.*"], "lr": 0.5}]))
    groups = pg.torch_param_groups(model, m)
    opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01]
    assert opt.param_groups[0]["params"][0] is model.head.weight
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("fc1.*", "groups"),
        ([{"lr": 0.1}], "groups[0].match"),
        ([{"match": [""]}], "groups[0].match"),
        ([{"match": 3}], "groups[0].match"),
        ([{"match": ["a"], "name": "x"}, {"match": ["b"], "name": "x"}], "groups[1].name"),
        ([{"match": ["a"], "name": "default"}], "groups[0].name"),
        ([1], "groups[0]"),
    ],
)
def test_bad_rules_are_422_naming_the_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        pg.parse_rules(raw)
    assert info.value.extra["field"] == field


def test_membership_json() -> None:
    d = pg.resolve(TwoLayerNet(), rules([{"name": "first", "match": ["fc1.*"]}])).to_dict()
    assert d["groups"][0] == {
        "name": "first", "patterns": ["fc1.*"], "options": {}, "params": ["fc1.weight", "fc1.bias"],
        "count": 2, "numel": 10 * 20 + 20, "default": False,
    }
    assert d["groups"][1]["default"] is True


def test_lazy_parameters_are_grouped_with_zero_elements() -> None:
    model = LazyNet()
    m = pg.resolve(model, rules([{"match": ["*.bias"]}]))
    assert sum(g.count for g in m.groups) == len(list(model.parameters()))
    assert all(g.numel >= 0 for g in m.groups)
