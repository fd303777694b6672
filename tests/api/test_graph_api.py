"""GET /api/models/{id}/graph and /graph/search over HTTP: contract, errors, memo, model untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from tests.conftest import LOCAL
from torchscope.main import create_app
from torchscope.settings import Settings

SPECS = [
    "torchscope.examples:NestedNet",
    "tests.fixtures.graph_models:BatchNormNet",
    "tests.fixtures.graph_models:TwoRequiredArgs",
]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(specs=SPECS)), base_url=LOCAL) as c:
        yield c


def test_graph_contract(client: TestClient) -> None:
    r = client.get("/api/models/nestednet/graph")
    assert r.status_code == 200
    g = r.json()
    assert g["path"] == "" and g["capture"] == "export" and "torch.export" in g["reason"]
    assert g["source"] == "inferred" and g["inputs"]["args"][0]["shape"][-1] == 8
    for n in g["nodes"]:
        assert {"id", "kind", "label", "path", "class", "target", "shapes_in", "shapes_out", "params", "flops"} <= n.keys()
    assert {e["source"] for e in g["edges"]} | {e["target"] for e in g["edges"]} <= {n["id"] for n in g["nodes"]}
    blocks = next(n for n in g["nodes"] if n["kind"] == "module" and n["path"] == "blocks")
    inner = client.get("/api/models/nestednet/graph", params={"path": blocks["path"]}).json()
    assert [n["path"] for n in inner["nodes"] if n["kind"] == "module"] == ["blocks.0", "blocks.1"]
    e = inner["edges"][0]
    assert {"source", "target", "shape", "dtype"} <= e.keys() and e["dtype"] == "float32"


def test_bad_path_is_404_and_no_inputs_is_409(client: TestClient) -> None:
    r = client.get("/api/models/nestednet/graph", params={"path": "blocks.7"})
    assert r.status_code == 404 and "blocks.7" in r.json()["detail"]
    r = client.get("/api/models/nestednet/graph", params={"path": "blocks", "call": 3})
    assert r.status_code == 404 and "called 1 time" in r.json()["detail"]
    r = client.get("/api/models/tworequiredargs/graph")
    assert r.status_code == 409 and "--inputs" in r.json()["detail"]
    assert client.get("/api/models/nope/graph").status_code == 404


def test_given_inputs_and_bad_inputs(client: TestClient) -> None:
    spec = {"args": [{"shape": [3, 5]}, {"shape": [5, 2]}]}
    g = client.get("/api/models/tworequiredargs/graph", params={"inputs": json.dumps(spec)}).json()
    assert g["source"] == "given"
    out = next(n for n in g["nodes"] if n["kind"] == "output")
    assert out["shapes_in"] == [{"shape": [3, 2], "dtype": "float32"}]
    r = client.get("/api/models/tworequiredargs/graph", params={"inputs": "{not json"})
    assert r.status_code == 422 and "inputs" in r.json()["detail"]
    r = client.get("/api/models/tworequiredargs/graph", params={"inputs": json.dumps({"args": [{"shape": [-1]}]})})
    assert r.status_code == 422
    bad = {"args": [{"shape": [3, 5]}, {"shape": [4, 2]}]}
    r = client.get("/api/models/tworequiredargs/graph", params={"inputs": json.dumps(bad)})
    assert r.status_code == 422 and "forward pass failed" in r.json()["detail"]


def test_capture_is_memoised_and_the_model_untouched(client: TestClient) -> None:
    loaded = client.app.state.registry.get("batchnormnet")  # type: ignore[attr-defined]
    m = loaded.module
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rng = torch.get_rng_state()
    first = client.get("/api/models/batchnormnet/graph").json()
    hooks = client.get("/api/models/batchnormnet/graph", params={"capture": "hooks"}).json()
    assert first["capture"] == "export" and hooks["capture"] == "hooks"
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert m.training and torch.equal(rng, torch.get_rng_state())
    keys = [k for k in loaded._memo if k.startswith("graph.capture:")]
    again = client.get("/api/models/batchnormnet/graph", params={"path": "bn"}).json()
    assert [k for k in loaded._memo if k.startswith("graph.capture:")] == keys  # no new capture
    assert again["totals"]["seconds"] == first["totals"]["seconds"]
    loaded.changed()
    assert not [k for k in loaded._memo if k.startswith("graph.capture:")]


def test_search_endpoint(client: TestClient) -> None:
    res = client.get("/api/models/nestednet/graph/search", params={"q": "fc2"}).json()
    assert [m["path"] for m in res["matches"]] == ["blocks.0.mlp.fc2", "blocks.1.mlp.fc2"]
    assert client.get("/api/models/nestednet/graph/search", params={"q": ""}).status_code == 422


def test_graph_page_and_tab(client: TestClient) -> None:
    r = client.get("/models/nestednet/graph")
    assert r.status_code == 200
    assert "elkjs-0.12.1/elk-api.js" in r.text and 'aria-current="page">Graph' in r.text
    assert 'href="/models/nestednet/graph"' in client.get("/models/nestednet").text
    assert client.get("/static/vendor/elkjs-0.12.1/elk-worker.min.js").status_code == 200


def test_big_models_are_captured_at_startup_and_meta_ones_via_export(make_client) -> None:  # type: ignore[no-untyped-def]
    import time

    # 16M parameters on meta (no memory): big enough to be prewarmed like the forward pass
    c = make_client(Settings(specs=["torch.nn:Linear"], kwargs=[{"in_features": 4000, "out_features": 4000}], meta=True))
    loaded = c.app.state.registry.get("linear")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        slot = loaded._memo.get("graph.capture:auto:served")
        if slot is not None and slot.outcome is not None:
            break
        time.sleep(0.05)
    assert slot is not None and slot.outcome is not None  # captured by the startup thread
    g = c.get("/api/models/linear/graph").json()
    assert g["capture"] == "export" and any("meta device" in w for w in g["warnings"])
    op = next(n for n in g["nodes"] if n["kind"] == "op")
    assert op["shapes_out"] == [{"shape": [1, 4000], "dtype": "float32"}] and op["flops"] == 2 * 4000 * 4000
    assert g["totals"]["seconds"] == c.get("/api/models/linear/graph").json()["totals"]["seconds"]
