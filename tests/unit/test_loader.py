"""SPEC parsing and model building: every way to name a model, every way it can fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from torchscope.inspect.errors import ModelSpecError
from torchscope.inspect.loader import build, parse_kwargs, parse_spec
from torchscope.inspect.models import load_models


def load(text: str, kwargs: dict | None = None, meta: bool = False) -> nn.Module:
    return build(parse_spec(text, kwargs), meta=meta)


def test_instance_class_factory_and_dotted_attr() -> None:
    assert isinstance(load("tests.fixtures.models:an_instance"), nn.Linear)
    m = load("torchscope.examples:TwoLayerNet", {"d_in": 3, "d_hidden": 5})
    assert m.fc1.weight.shape == (5, 3)
    assert isinstance(load("torchscope.examples:conv_bn_block", {"c_out": 4}), nn.Sequential)
    assert isinstance(load("tests.fixtures.models:Zoo.small"), nn.Linear)


def test_name_defaults_to_attribute_and_can_be_given() -> None:
    assert parse_spec("torchscope.examples:TwoLayerNet").name == "TwoLayerNet"
    assert parse_spec("tests.fixtures.models:Zoo.small").name == "small"
    spec = parse_spec("mine=torchscope.examples:TwoLayerNet")
    assert spec.name == "mine" and spec.target == "torchscope.examples"


def test_file_path_spec(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("WIDTH = 7\n")
    f = tmp_path / "my_models.py"
    f.write_text(
        textwrap.dedent(
            """
            from torch import nn
            from helper_mod import WIDTH  # a sibling import, as `python my_models.py` allows

            class MyNet(nn.Module):
                def __init__(self, depth=1):
                    super().__init__()
                    self.layers = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(depth))
            """
        )
    )
    m = load(f"{f}:MyNet", {"depth": 3})
    assert len(m.layers) == 3 and m.layers[0].in_features == 7


def test_meta_builds_without_memory() -> None:
    m = load("torchscope.examples:TinyTransformerLM", meta=True)
    assert all(p.is_meta for p in m.parameters())
    assert sum(p.numel() for p in m.parameters()) == 120_576


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ("no_such_pkg.models:net", None, "no module named 'no_such_pkg'"),
        ("torchscope.examples:Nope", None, "torchscope.examples has no attribute 'Nope'"),
        ("tests.fixtures.models:Zoo.nope", None, "tests.fixtures.models:Zoo has no attribute 'nope'"),
        ("tests.fixtures.models:NOT_CALLABLE", None, "is an int, not an nn.Module"),
        ("tests.fixtures.models:build_not_a_module", None, "returned a dict, not an nn.Module"),
        ("tests.fixtures.models:build_raises", {"depth": 5}, "build_raises(depth=5) raised ValueError: depth 5 is not supported"),
        ("torchscope.examples:TwoLayerNet", {"nope": 1}, "unexpected keyword argument 'nope'"),
        ("tests.fixtures.models:an_instance", {"x": 1}, "already-built nn.Module instance"),
        ("missing/file.py:Net", None, "file not found: missing/file.py"),
        ("torchscope.examples", None, "a SPEC is 'package.module:attr'"),
        ("torchscope.examples:1bad", None, "is not an attribute name"),
    ],
)
def test_errors_name_the_spec_and_the_cause(spec: str, kwargs: dict | None, expected: str) -> None:
    with pytest.raises(ModelSpecError) as err:
        load(spec, kwargs)
    assert spec in str(err.value) or expected in str(err.value)
    assert expected in str(err.value)
    assert err.value.status == 400


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    f = tmp_path / "broken.py"
    f.write_text("import torch\nraise RuntimeError('boom at import')\n")
    with pytest.raises(ModelSpecError, match=r"importing .* raised RuntimeError: boom at import"):
        load(f"{f}:Net")


def test_factory_calling_sys_exit_is_an_error_not_an_exit(tmp_path: Path) -> None:
    f = tmp_path / "exits.py"
    f.write_text("import sys\ndef build():\n    sys.exit(3)\n")
    with pytest.raises(ModelSpecError, match="raised SystemExit"):
        load(f"{f}:build")


def test_noisy_user_code_still_loads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(UserWarning):
        m = load("tests.fixtures.models:noisy_factory")
    assert isinstance(m, nn.Linear)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{bad", "--kwargs is not valid JSON"), ("[1, 2]", "must be a JSON object"), ("3", "must be a JSON object")],
)
def test_bad_kwargs(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        parse_kwargs(text)


def test_load_models_keeps_order_and_unique_ids() -> None:
    reg = load_models(["torchscope.examples:TwoLayerNet", "torchscope.examples:TwoLayerNet", "x=torchscope.examples:SmallCNN"])
    assert [(m.id, m.name) for m in reg] == [("twolayernet", "TwoLayerNet"), ("twolayernet-2", "TwoLayerNet"), ("x", "x")]


def test_load_models_kwargs_once_or_per_spec() -> None:
    reg = load_models(["torchscope.examples:TwoLayerNet", "torchscope.examples:TwoLayerNet"], [{"d_in": 2}, {"d_in": 4}])
    assert [m.module.fc1.in_features for m in reg] == [2, 4]
    with pytest.raises(ModelSpecError, match="given 2 times for 3 SPECs"):
        load_models(["torchscope.examples:TwoLayerNet"] * 3, [{}, {}])


def test_reset_restores_bit_exact() -> None:
    reg = load_models(["torchscope.examples:TwoLayerNet"])
    loaded = reg.get("twolayernet")
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    loaded.ensure_original()
    with torch.no_grad():
        loaded.module.fc1.weight.mul_(3)
    assert not torch.equal(loaded.module.fc1.weight, before["fc1.weight"])
    assert loaded.reset() == 4
    assert all(torch.equal(loaded.module.state_dict()[k], v) for k, v in before.items())


def test_models_carry_the_first_line_of_their_docstring() -> None:
    reg = load_models([])  # the built-in examples describe their lesson
    docs = {m.name: m.doc for m in reg}
    assert docs["ListVsModuleList"] == "Layers in a plain list next to the same layers in nn.ModuleList."
    reg = load_models(["tests.fixtures.models:an_instance", "tests.fixtures.models:TiedEmbeddingLM"])
    assert [m.doc for m in reg] == ["", "Input and output embeddings share one Parameter: counted once by parameters()."]
