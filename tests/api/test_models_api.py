"""The structure API over HTTP (TestClient, lifespan runs)."""

from __future__ import annotations

import torch
from fastapi.testclient import TestClient

from tests.fixtures import models as zoo
from torchscope.settings import Settings


def test_models_in_spec_order_with_url_safe_ids(make_client) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:TiedEmbeddingLM", "My_LM=torchscope.examples:SmallCNN",
                                    "torchscope.examples:conv_bn_block", "torchscope.examples:SmallCNN"]))
    models = c.get("/api/models").json()
    assert [(m["id"], m["name"], m["class"]) for m in models] == [
        ("tiedembeddinglm", "TiedEmbeddingLM", "TiedEmbeddingLM"),
        ("my_lm", "My_LM", "SmallCNN"),
        ("conv_bn_block", "conv_bn_block", "Sequential"),
        ("smallcnn", "SmallCNN", "SmallCNN"),
    ]
    for m in models:
        assert c.get(f"/api/models/{m['id']}").status_code == 200


def test_list_and_summary(client: TestClient) -> None:
    models = client.get("/api/models").json()
    assert [m["id"] for m in models][:2] == ["tensorvsparameter", "nestednet"]
    assert {"id", "name", "class"} <= set(models[0])
    s = client.get("/api/models/tinytransformerlm").json()
    assert s["parameters"] == {"total": 120576, "trainable": 120576, "frozen": 0, "tensors": 28,
                               "bytes": 482304, "uninitialized": []}
    assert s["buffers"]["non_persistent"] == 4096 and s["buffers"]["persistent"] == 0
    assert s["modules"] == 26 and s["dtypes"] == {"float32": 120576}


def test_tree_whole_and_lazy(client: TestClient) -> None:
    whole = client.get("/api/models/smallcnn/tree").json()
    assert whole["path"] == "" and whole["children"][0]["children"][0]["children"][0]["class"] == "Conv2d"
    sub = client.get("/api/models/smallcnn/tree", params={"path": "features.0", "depth": 0}).json()
    assert sub["path"] == "features.0" and sub["children"] is None and sub["child_count"] == 3
    found = client.get("/api/models/smallcnn/tree", params={"q": "linear"}).json()
    assert found["matches"] == ["classifier.2"]


def test_parameters_buffers_lint(make_client) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:TiedEmbeddingLM", "tests.fixtures.models:BufferKinds",
                                    "tests.fixtures.models:PlainListOfLayers"]))
    model = zoo.TiedEmbeddingLM()
    rows = c.get("/api/models/tiedembeddinglm/parameters").json()
    assert [r["name"] for r in rows] == [n for n, _ in model.named_parameters(remove_duplicate=False)]
    head = next(r for r in rows if r["name"] == "head.weight")
    assert head["shared_with"] == ["embed.weight"] and head["shape"] == [50, 8] and head["dtype"] == "float32"
    bufs = c.get("/api/models/bufferkinds/buffers").json()
    assert {b["name"]: b["persistent"] for b in bufs} == {
        "scale": True, "cache": False, "bn.running_mean": True, "bn.running_var": True, "bn.num_batches_tracked": True}
    lint = c.get("/api/models/plainlistoflayers/lint").json()
    assert {(f["kind"], f["path"]) for f in lint} == {("plain_container", "layers"), ("plain_container", "extra")}
    assert all(f["message"] for f in lint)


def test_meta_model_serves_structure(make_client) -> None:
    c = make_client(Settings(specs=["torchscope.examples:TinyTransformerLM"], meta=True))
    s = c.get("/api/models/tinytransformerlm").json()
    assert s["meta"] is True and s["parameters"]["total"] == 120576
    assert c.get("/models/tinytransformerlm").status_code == 200
    assert c.get("/api/models/tinytransformerlm/tree").status_code == 200


def test_unknown_ids_and_paths_are_404_json(client: TestClient) -> None:
    for url in ["/api/models/nope", "/api/models/nope/tree", "/api/models/nope/parameters",
                "/api/models/nope/buffers", "/api/models/nope/lint"]:
        r = client.get(url)
        assert r.status_code == 404 and r.json()["detail"] == "no model with id 'nope'", url
    r = client.get("/api/models/smallcnn/tree", params={"path": "nope.0"})
    assert r.status_code == 404 and "no module at path 'nope.0'" in r.json()["detail"]
    r = client.get("/api/models/smallcnn/tree", params={"depth": -1})
    assert r.status_code == 422 and "depth" in r.json()["detail"]
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and "detail" in r.json()


def test_pages_render_and_errors_are_readable(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "TinyTransformerLM" in r.text
    r = client.get("/models/listvsmodulelist")
    assert r.status_code == 200 and "plain_list.layers" in r.text and "nn.ModuleList" in r.text
    r = client.get("/models/nope")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "no model with id &#39;nope&#39;" in r.text


def test_openapi_docs_and_offline_plotly(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/models/{model_id}/tree" in paths
    url = client.app.state.plotly_url  # type: ignore[attr-defined]
    r = client.get(url)
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert "immutable" in r.headers["cache-control"]
    assert client.get(url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_inspection_endpoints_do_not_change_the_model(client: TestClient) -> None:
    loaded = client.app.state.registry.get("smallcnn")  # type: ignore[attr-defined]
    loaded.module.eval()
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    for suffix in ["", "/tree", "/parameters", "/buffers", "/lint", "/modules"]:
        assert client.get("/api/models/smallcnn" + suffix).status_code == 200
    assert loaded.module.training is False
    assert all(torch.equal(v, loaded.module.state_dict()[k]) for k, v in before.items())


def test_memoised_views_follow_changes(make_client) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:LazyNet"]))
    s = c.get("/api/models/lazynet").json()
    assert s["parameters"]["uninitialized"] == ["lazy.weight", "lazy.bias"] and s["parameters"]["total"] == 12
    assert c.get("/api/models/lazynet/parameters").json()[0]["shape"] is None
    loaded = c.app.state.registry.get("lazynet")
    with loaded.lock:
        loaded.module(torch.randn(2, 3))  # materialises lazy.weight as [5, 3]
        loaded.changed()
    s = c.get("/api/models/lazynet").json()
    assert s["parameters"]["uninitialized"] == [] and s["parameters"]["total"] == 5 * 3 + 5 + 12
    assert c.get("/api/models/lazynet/parameters").json()[0]["shape"] == [5, 3]
    assert c.get("/api/models/lazynet/tree").json()["params_total"] == 32


def test_structure_views_are_prewarmed_at_startup(make_client) -> None:
    import time

    c = make_client(Settings(specs=["tests.fixtures.models:wide_model"]))
    loaded = c.app.state.registry.get("wide_model")
    deadline = time.monotonic() + 30
    while "json:parameters" not in loaded._memo and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {"index", "summary", "json:parameters", "json:buffers"} <= set(loaded._memo)
    # what was prewarmed is what the API serves
    assert c.get("/api/models/wide_model").json()["modules"] == 19_997
    assert len(c.get("/api/models/wide_model/parameters").json()) == 19_996
