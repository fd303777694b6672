"""/api/models/{id}/forward over HTTP: the contract of issue 10, errors, memoisation, the untouched model."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from torchscope.inspect.registry import LoadedModel
from torchscope.settings import Settings

CALL_KEYS = {"index", "path", "class", "call", "depth", "parent", "inputs", "outputs", "flops", "flops_total", "output_bytes", "params"}


def loaded(client: TestClient, model_id: str) -> LoadedModel:
    return client.app.state.registry.get(model_id)  # type: ignore[attr-defined, no-any-return]


def snapshot(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[bool], torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()], torch.get_rng_state()


def assert_untouched(before: Any, model: torch.nn.Module) -> None:
    tensors, training, rng = before
    after = model.state_dict()
    assert after.keys() == tensors.keys() and all(torch.equal(tensors[k], after[k]) for k in tensors)
    assert [m.training for m in model.modules()] == training
    assert torch.equal(torch.get_rng_state(), rng)


def test_get_answers_the_contract_for_inferred_inputs(client: TestClient) -> None:
    model = loaded(client, "smallcnn").module
    before = snapshot(model)
    r = client.get("/api/models/smallcnn/forward")
    assert r.status_code == 200
    d = r.json()
    assert {"inputs", "source", "mode", "calls", "totals", "warnings"} <= set(d)
    assert d["source"] == "inferred" and d["mode"] == "fake" and d["device"] == "cpu"
    assert d["inputs"] == {"args": [{"shape": [1, 3, 224, 224], "dtype": "float32"}], "kwargs": {}}
    assert all(set(c) >= CALL_KEYS for c in d["calls"])
    assert [c["path"] for c in d["calls"][:3]] == ["", "features", "features.0"]
    assert d["calls"][-1] == {**d["calls"][-1], "path": "classifier.2", "class": "Linear", "call": 0,
                              "outputs": {"shape": [1, 10], "dtype": "float32"}, "flops": 2 * 64 * 10}
    t = d["totals"]
    assert {"flops", "param_bytes", "activation_bytes", "training_bytes"} <= set(t)
    assert t["flops"] == d["calls"][0]["flops_total"] > 0
    assert set(t["training_bytes"]["total"]) == {"sgd", "sgd_momentum", "adam", "adamw"}
    assert "FlopCounterMode" in d["explain"]["flops"]
    # BatchNorm in train mode updates running stats in a real forward: not here
    assert_untouched(before, model)
    assert loaded(client, "smallcnn").module.features[0][1].num_batches_tracked.item() == 0


def test_memoised_per_structure_version(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchscope.inspect import forward

    runs = []
    real = forward.run_forward
    monkeypatch.setattr(forward, "run_forward", lambda *a, **k: runs.append(1) or real(*a, **k))
    first = client.get("/api/models/twolayernet/forward").content
    assert client.get("/api/models/twolayernet/forward").content == first
    assert client.post("/api/models/twolayernet/forward", json={"inputs": None}).content == first
    assert len(runs) == 1
    loaded(client, "twolayernet").changed()  # e.g. weights replaced by the init lab
    client.get("/api/models/twolayernet/forward")
    assert len(runs) == 2


def test_post_with_given_inputs(client: TestClient) -> None:
    model = loaded(client, "tinytransformerlm").module
    before = snapshot(model)
    body = {"inputs": {"args": [{"shape": [3, 10], "dtype": "int64", "low": 0, "high": 256}]}}
    d = client.post("/api/models/tinytransformerlm/forward", json=body).json()
    assert d["source"] == "given" and d["inputs"]["args"][0]["shape"] == [3, 10]
    assert d["calls"][0]["outputs"] == {"shape": [3, 10, 256], "dtype": "float32"}
    lm_head = next(c for c in d["calls"] if c["path"] == "lm_head")
    assert lm_head["flops"] == 2 * 3 * 10 * 64 * 256
    assert_untouched(before, model)


def test_no_inputs_is_a_409_with_the_reason(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:KwargsOnly"]))
    r = c.get("/api/models/kwargsonly/forward")
    assert r.status_code == 409
    assert "takes x, mask" in r.json()["detail"] and r.json()["reason"]
    tree = c.get("/api/models/kwargsonly/forward/modules")  # the structure page asks on every load: no 4xx
    assert tree.status_code == 200 and tree.json()["state"] == "no-inputs" and "takes x, mask" in tree.json()["detail"]
    ok = c.post("/api/models/kwargsonly/forward", json={"inputs": {"kwargs": {"x": {"shape": [2, 5]}, "mask": {"shape": [2]}}}})
    assert ok.status_code == 200 and ok.json()["calls"][1]["outputs"] == {"shape": [2, 5], "dtype": "float32"}


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"args": [{"shape": [1, 10], "dtype": "float31"}]}, "inputs.args[0].dtype"),
        ({"args": [{"shape": [1, -10]}]}, "inputs.args[0].shape[1]"),
        ({"args": [{"shape": [65536, 65536, 2]}]}, "inputs.args[0].shape"),
        ({"kwargs": {"x": json.loads("[" * 40 + "]" * 40)}}, "inputs.kwargs.x"),
    ],
)
def test_unfit_inputs_are_a_422_naming_the_field(client: TestClient, inputs: Any, field: str) -> None:
    r = client.post("/api/models/twolayernet/forward", json={"inputs": inputs})
    assert r.status_code == 422
    assert r.json()["field"].startswith(field) and r.json()["detail"].startswith(field)


def test_a_failing_forward_is_a_422_naming_the_module(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:ShapeBug"]))
    r = c.post("/api/models/shapebug/forward", json={"inputs": [[1, 20, 40]]})
    assert r.status_code == 422
    d = r.json()
    assert d["path"] == "fc1" and d["class"] == "Linear" and d["call"] == 0
    assert d["module_inputs"] == {"args": [{"shape": [1, 800], "dtype": "float32"}], "kwargs": {}}
    assert d["error"] == "mat1 and mat2 shapes cannot be multiplied (1x800 and 784x10)"
    assert "fc1" in d["detail"] and "[1, 800]" in d["detail"]
    assert [x.get("state", "done") for x in d["calls"]] == ["failed", "done", "failed"]
    assert d["inputs"] == {"args": [{"shape": [1, 20, 40], "dtype": "float32"}], "kwargs": {}} and d["source"] == "given"
    # the server keeps serving, the failure is memoised like an answer
    assert c.post("/api/models/shapebug/forward", json={"inputs": [[1, 20, 40]]}).json() == d
    assert c.get("/api/models/shapebug/forward").status_code == 200  # inferred [1, 784] fits


def test_cli_inputs_json_and_callable(make_client: Any) -> None:
    c = make_client(Settings(
        specs=["tests.fixtures.models:tiny_gpt2", "tests.fixtures.models:KwargsOnly"],
        inputs=["tests.fixtures.models:make_token_inputs", "tests.fixtures.models:make_kwargs_only_inputs"],
    ))  # fmt: skip
    gpt2 = c.get("/api/models/tiny_gpt2/forward").json()
    assert gpt2["source"] == "cli" and gpt2["inputs"]["kwargs"]["attention_mask"]["shape"] == [2, 8]
    assert gpt2["calls"][0]["outputs"]["items"]["logits"] == {"shape": [2, 8, 97], "dtype": "float32"}
    kw = c.get("/api/models/kwargsonly/forward").json()
    assert kw["source"] == "cli" and set(kw["inputs"]["kwargs"]) == {"x", "mask"}


def test_meta_model_served_with_json_inputs(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:tiny_gpt2"], meta=True,
                             inputs=['{"kwargs": {"input_ids": {"shape": [1, 12], "dtype": "int64", "high": 97}}}']))
    d = c.get("/api/models/tiny_gpt2/forward").json()
    assert d["mode"] == "fake" and d["device"] == "cpu" and d["source"] == "cli"
    assert d["calls"][0]["outputs"]["items"]["logits"]["shape"] == [1, 12, 97]
    assert loaded(c, "tiny_gpt2").module.lm_head.weight.is_meta


def test_text_and_markdown_tables(client: TestClient) -> None:
    text = client.get("/api/models/nestednet/forward", params={"format": "text", "depth": 1})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "blocks: Sequential" in text.text and "stem: Linear" in text.text and "mlp" not in text.text.split("Total")[0]
    assert "calls deeper than --depth 1 not shown" in text.text
    md = client.post("/api/models/nestednet/forward", params={"format": "markdown"}, json={"inputs": [[4, 8]]}).text
    assert "| `blocks.0.mlp.fc1` | Linear | 0 | [4, 8] | [4, 16] |" in md.replace("&nbsp;", "")
    assert "**Total FLOPs**" in md


def test_modules_view_for_the_tree(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:SharedAtTwoPaths"]))
    d = c.get("/api/models/sharedattwopaths/forward/modules").json()
    assert d["flops"] == 3 * 2 * 16 and d["source"] == "inferred" and d["inputs"] == "[1, 4]"
    assert d["nodes"]["first"]["calls"] == 2 and d["nodes"]["second"] == d["nodes"]["first"]
    assert d["nodes"]["middle"] == {"calls": 1, "output": {"shape": [1, 4], "dtype": "float32"},
                                    "flops": 32, "flops_total": 32, "output_bytes": 16}
    assert d["nodes"][""]["flops_total"] == d["flops"]
    given = c.post("/api/models/sharedattwopaths/forward/modules", json={"inputs": [[5, 4]]}).json()
    assert given["source"] == "given" and given["nodes"]["middle"]["output"]["shape"] == [5, 4]


def test_forward_page_and_tab(client: TestClient) -> None:
    page = client.get("/models/smallcnn/forward")
    assert page.status_code == 200
    assert 'href="/models/smallcnn/forward" class="tab active"' in page.text
    assert "saved tensors" in page.text and "inputs-editor" in page.text
    assert 'href="/models/smallcnn/forward"' in client.get("/models/smallcnn").text


def test_a_tree_of_thousands_of_modules_asks_before_running_a_forward(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:wide_model", "torchscope.examples:SmallCNN"],
                             kwargs=[{"n_modules": 4000}, {}]))
    assert 'data-forward-auto="0"' in c.get("/models/wide_model").text
    assert 'data-forward-auto="1"' in c.get("/models/smallcnn").text
