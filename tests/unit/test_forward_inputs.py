"""Example inputs: the JSON form within budgets, honest inference, and --inputs (JSON, file, callable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.fixtures import models as fx
from torchscope.inspect.errors import InvalidRequest, ModelSpecError
from torchscope.inspect.forward import NoInputs, resolve_inputs, run_forward
from torchscope.inspect.forward.infer import Inferred, NotInferred, infer_inputs
from torchscope.inspect.forward.sources import attach_cli_inputs, cli_inputs, parse_inputs_option
from torchscope.inspect.forward.spec import TensorSpec, parse_inputs
from torchscope.inspect.registry import ModelRegistry

# ----------------------------------------------------------------------------- the JSON form


def test_full_form_shorthand_and_defaults() -> None:
    spec = parse_inputs({"args": [{"shape": [1, 3, 8, 8]}], "kwargs": {"ids": {"shape": [2, 5], "dtype": "long", "high": 100}, "flag": False}})
    assert spec.args == (TensorSpec((1, 3, 8, 8), torch.float32),)
    assert spec.kwargs["ids"] == TensorSpec((2, 5), torch.int64, 0, 100)
    assert spec.kwargs["flag"] is False
    assert spec.to_json() == {
        "args": [{"shape": [1, 3, 8, 8], "dtype": "float32"}],
        "kwargs": {"ids": {"shape": [2, 5], "dtype": "int64", "low": 0, "high": 100}, "flag": False},
    }
    assert parse_inputs([[1, 3], [2]]).args == (TensorSpec((1, 3)), TensorSpec((2,)))
    assert parse_inputs({"kwargs": {"x": [{"shape": [1]}, {"a": {"shape": [2], "dtype": "torch.bfloat16"}}]}}).kwargs["x"] == [
        TensorSpec((1,)), {"a": TensorSpec((2,), torch.bfloat16)},
    ]  # fmt: skip
    assert parse_inputs({}).to_json() == {"args": [], "kwargs": {}}
    # the resolved JSON parses back to the same spec
    assert parse_inputs(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"args": [{"shape": [1, 3], "dtype": "floot32"}]}, "inputs.args[0].dtype", "unknown dtype 'floot32'"),
        ({"args": [{"shape": [1, -3]}]}, "inputs.args[0].shape[1]", "cannot be negative"),
        ({"args": [{"shape": [2**16, 2**16]}]}, "inputs.args[0].shape", "more than 2**31"),
        ({"args": [{"shape": [1.5]}]}, "inputs.args[0].shape[0]", "integers"),
        ({"args": [{"shape": [1], "dtype": "float32", "high": 3}]}, "inputs.args[0]", "integer dtypes only"),
        ({"kwargs": {"ids": {"shape": [1], "dtype": "int64", "low": 5, "high": 5}}}, "inputs.kwargs.ids", "greater than low"),
        ({"kwargs": {"ids": {"shape": [1], "dtype": "uint8", "high": 300}}}, "inputs.kwargs.ids", "does not fit uint8"),
        ({"args": [{"shape": [1], "size": 3}]}, "inputs.args[0]", "unknown key"),
        ({"args": {"shape": [1]}}, "inputs.args", "must be a list"),
        ({"kwargs": {"not a name": 1}}, "inputs.kwargs", "not an argument name"),
        ({"inputs": []}, "inputs", "expected args and/or kwargs"),
        ({"args": [{"type": "DynamicCache", "repr": "DynamicCache()"}]}, "inputs.args[0]", "cannot be re-created"),
        ({"args": [float("nan")]}, "inputs.args[0]", "finite"),
        ("x", "inputs", "a list of shapes"),
    ],
)
def test_unfit_specs_are_a_422_naming_the_field(data: object, field: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_inputs(data)
    assert info.value.status == 422
    assert info.value.extra["field"] == field
    assert words in info.value.message and info.value.message.startswith(field + ": ")


def test_nesting_and_size_budgets() -> None:
    deep: object = {"shape": [1]}
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidRequest, match="nested deeper than 32 levels"):
        parse_inputs({"args": [deep]})
    with pytest.raises(InvalidRequest, match="max_leaves"):
        parse_inputs({"args": [[1] * 10_001]})
    with pytest.raises(InvalidRequest, match="max_rank"):
        parse_inputs([[1] * 33])
    assert parse_inputs([[2**31]]).args[0].numel == 2**31  # the limit itself is fine: nothing is allocated


# ----------------------------------------------------------------------------- inference


def only(found: Inferred | NotInferred) -> Inferred:
    assert isinstance(found, Inferred), found
    return found


def test_inferred_from_the_first_layer() -> None:
    linear = only(infer_inputs(fx.CalledTwice()))
    assert linear.candidates[0].args == (TensorSpec((1, 6)),) and "shared = Linear takes 6 features" in linear.note
    conv = only(infer_inputs(fx.ResNetLike()))
    assert [c.args[0].shape for c in conv.candidates] == [(1, 3, 224, 224), (1, 3, 32, 32), (1, 3, 28, 28)]
    assert "a guess" in conv.note
    from torchscope.examples import TinyTransformerLM

    emb = only(infer_inputs(TinyTransformerLM()))  # its own pos_emb Parameter is not a layer
    assert emb.candidates[0].args == (TensorSpec((1, 16), torch.int64, 0, 256),)
    kw = only(infer_inputs(nn.Sequential(nn.LayerNorm(7), nn.Linear(7, 2))))  # norms keep the shape
    assert kw.candidates[0].args == (TensorSpec((1, 7)),)
    half = only(infer_inputs(nn.Linear(3, 3).to(torch.float16)))
    assert half.candidates[0].args[0].dtype == torch.float16


def test_inferred_for_hugging_face_models_from_their_config() -> None:
    gpt2 = only(infer_inputs(fx.tiny_gpt2()))
    assert gpt2.candidates[0].kwargs == {"input_ids": TensorSpec((1, 16), torch.int64, 0, 97)}
    assert "vocab_size=97" in gpt2.note
    llama = only(infer_inputs(fx.tiny_llama()))
    assert llama.candidates[0].kwargs["input_ids"].high == 101


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (fx.KwargsOnly(), "takes x, mask"),
        (fx.LazyNet(), "is lazy"),
        (nn.LSTM(4, 4), "LSTM) is not a Conv1d/2d/3d, Embedding or Linear"),
        (nn.ReLU(), "no layer with parameters"),
        (fx.PartlyFrozen(), "PartlyFrozen has no forward() method"),
    ],
)
def test_never_guessed_silently(model: nn.Module, why: str) -> None:
    found = infer_inputs(model)
    assert isinstance(found, NotInferred) and why in found.reason
    with pytest.raises(NoInputs) as info:
        resolve_inputs(model)
    assert info.value.status == 409 and why in info.value.message and "--inputs" in info.value.message


def test_an_inferred_size_that_does_not_fit_tries_the_next_and_says_so() -> None:
    answer = run_forward(fx.LeNet(), resolve_inputs(fx.LeNet())).to_dict()
    assert answer["inputs"]["args"] == [{"shape": [1, 1, 32, 32], "dtype": "float32"}]
    assert "spatial size 32" in answer["note"]
    assert any(
        w.startswith("inferred inputs [1, 1, 224, 224] did not fit (at `classifier.1`:") and w.endswith("[1, 1, 32, 32] did")
        for w in answer["warnings"]
    ), answer["warnings"]


# ----------------------------------------------------------------------------- --inputs


def test_inputs_option_json_file_and_errors(tmp_path: Path) -> None:
    assert parse_inputs_option("[[1, 3]]").spec is not None
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"kwargs": {"x": {"shape": [2, 5]}, "mask": {"shape": [2]}}}))
    resolved = cli_inputs(parse_inputs_option(str(path)), fx.KwargsOnly())
    assert resolved.source == "cli" and resolved.spec.kwargs["mask"] == TensorSpec((2,))
    for text, words in [
        ("{nope", "not valid JSON"),
        ('{"args": [{"shape": [-1]}]}', "inputs.args[0].shape[0]: sizes cannot be negative"),
        ("missing.json", "file not found"),
        ("no colon here", "neither JSON nor a callable's SPEC"),
        ("[" * 5000 + "]" * 5000, "nested"),
    ]:
        with pytest.raises(ModelSpecError, match="--inputs") as info:
            parse_inputs_option(text)
        assert words in info.value.message


def test_inputs_option_callables() -> None:
    gpt2 = fx.tiny_gpt2()
    resolved = cli_inputs(parse_inputs_option("tests.fixtures.models:make_token_inputs"), gpt2)  # given the model
    assert resolved.to_json()["kwargs"]["input_ids"] == {"shape": [2, 8], "dtype": "int64", "low": 0, "high": 16}
    assert resolved.values is not None and torch.equal(resolved.values[1]["input_ids"], fx.make_token_inputs(gpt2)["input_ids"])
    pair = cli_inputs(parse_inputs_option("tests.fixtures.models:make_kwargs_only_inputs"), fx.KwargsOnly())
    assert pair.spec.args == () and set(pair.spec.kwargs) == {"x", "mask"}
    with pytest.raises(ModelSpecError, match=r"make_inputs_raises\(\) raised RuntimeError: no data here"):
        cli_inputs(parse_inputs_option("tests.fixtures.models:make_inputs_raises"), fx.KwargsOnly())
    with pytest.raises(ModelSpecError, match="not a callable"):
        cli_inputs(parse_inputs_option("tests.fixtures.models:NOT_CALLABLE"), fx.KwargsOnly())
    with pytest.raises(ModelSpecError, match="returned a int; return a tensor, a tuple of args"):
        cli_inputs(parse_inputs_option("tests.fixtures.models:make_inputs_wrong_type"), fx.KwargsOnly())


def test_inputs_given_once_or_once_per_model() -> None:
    registry = ModelRegistry()
    registry.add("a", "a", nn.Linear(2, 2))
    registry.add("b", "b", nn.Linear(3, 3))
    attach_cli_inputs(registry, ["[[1, 2]]", "[[1, 3]]"])
    assert [m.inputs.spec.args[0].shape for m in registry] == [(1, 2), (1, 3)]
    with pytest.raises(ModelSpecError, match="--inputs was given 3 times for 2 models"):
        attach_cli_inputs(registry, ["[[1]]"] * 3)
