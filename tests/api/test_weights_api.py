"""Histogram and overview endpoints over HTTP: contract, exactness, every error case."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from torchscope.examples import TinyTransformerLM
from torchscope.settings import Settings


def hist(client: TestClient, model: str, **params: Any) -> Any:
    return client.get(f"/api/models/{model}/histogram", params=params)


def test_histogram_contract_and_exact_counts(client: TestClient) -> None:
    r = hist(client, "tinytransformerlm", tensor="blocks.layers.0.linear1.weight", bins=32)
    assert r.status_code == 200
    d = r.json()
    assert {"name", "numel", "edges", "counts", "stats", "sampled"} <= set(d)
    assert {"mean", "std", "min", "max", "zeros", "nan", "inf", "l2"} <= set(d["stats"])
    assert len(d["edges"]) == 33 and len(d["counts"]) == 32 and d["sampled"] is False
    served = client.app.state.registry.get("tinytransformerlm").module  # type: ignore[attr-defined]
    t = served.get_parameter("blocks.layers.0.linear1.weight")
    assert (
        d["counts"]
        == np.histogram(t.detach().float().numpy(), bins=np.asarray(d["edges"]))[0].tolist()
    )
    assert d["stats"]["min"] == t.min().item() and d["stats"]["max"] == t.max().item()
    assert d["stats"]["std"] == pytest.approx(t.std().item(), rel=1e-5)


def test_default_bins_is_64_and_alias_of_tied_weight_works(client: TestClient) -> None:
    d = hist(client, "tinytransformerlm", tensor="lm_head.weight").json()
    assert len(d["counts"]) == 64 and d["name"] == "lm_head.weight" and d["numel"] == 256 * 64


def test_integer_buffer_and_non_persistent_buffer(client: TestClient) -> None:
    d = hist(client, "smallcnn", tensor="features.0.1.num_batches_tracked", bins=4).json()
    assert d["dtype"] == "int64" and sum(d["counts"]) == 1 and d["stats"]["mean"] == 0
    mask = hist(client, "tinytransformerlm", tensor="causal_mask", bins=8).json()
    # -inf above the diagonal: counted in stats, not in bins
    assert mask["stats"]["inf"] == 64 * 63 // 2 and sum(mask["counts"]) == 64 * 65 // 2


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"tensor": "nope.weight"}, 404, "no parameter or buffer named 'nope.weight'"),
        ({}, 422, "tensor"),
        ({"tensor": ""}, 422, "tensor"),
        ({"tensor": "fc1.weight", "bins": 0}, 422, "bins"),
        ({"tensor": "fc1.weight", "bins": 5000}, 422, "bins"),
        ({"tensor": "fc1.weight", "bins": "many"}, 422, "bins"),
    ],
)
def test_bad_requests_are_precise_4xx(
    client: TestClient, params: dict[str, Any], status: int, needle: str
) -> None:
    r = hist(client, "twolayernet", **params)
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_unknown_model_is_404(client: TestClient) -> None:
    r = hist(client, "nope", tensor="x")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_meta_and_lazy_tensors_get_no_values_409(make_client: Any) -> None:
    c = make_client(
        Settings(specs=["tests.fixtures.models:LazyNet", "torchscope.examples:TwoLayerNet"], meta=True)
    )
    ids = [m["id"] for m in c.get("/api/models").json()]
    lazy, meta = ids
    r = hist(c, lazy, tensor="lazy.weight")
    assert r.status_code == 409 and "lazy" in r.json()["detail"]
    r = hist(c, meta, tensor="fc1.weight")
    assert r.status_code == 409 and "meta" in r.json()["detail"]
    ov = c.get(f"/api/models/{meta}/overview").json()
    assert ov["summarised"] == 0 and ov["default_tensor"] is None
    assert list(ov["not_summarised"].values()) == [4] and "meta" in next(iter(ov["not_summarised"]))
    assert all(m is None for m in ov["buckets"]["parameters"]["mean"])
    # the server keeps serving
    assert c.get(f"/api/models/{lazy}/overview").status_code == 200
    # the pages say what they cannot show, and link to what works
    page = c.get(f"/models/{meta}/weights").text
    assert 'data-reason="meta"' in page and f'href="/models/{meta}"' in page and "plotly" not in page
    assert 'data-reason="meta"' in c.get(f"/models/{lazy}/weights").text  # lazy, and the rest on meta


def test_tensor_search_rows_in_depth_order(client: TestClient) -> None:
    d = client.get("/api/models/tinytransformerlm/tensors", params={"limit": 3}).json()
    names = [r["name"] for r in d["items"]]
    assert names == ["pos_emb", "causal_mask", "tok_emb.weight"] and d["total"] == 29  # 28 parameters + causal_mask
    tok = d["items"][2]
    assert tok["aliases"] == ["lm_head.weight"] and tok["module_type"] == "Embedding"
    assert tok["numel"] == TinyTransformerLM().tok_emb.weight.numel() and tok["index"] == 2
    hits = client.get("/api/models/tinytransformerlm/tensors", params={"q": "lm_head"}).json()
    assert [r["name"] for r in hits["items"]] == ["tok_emb.weight"]  # found by its tied alias
    assert client.get("/api/models/tinytransformerlm/tensors", params={"limit": 0}).status_code == 422


def test_overview_buckets_and_zoom(client: TestClient) -> None:
    d = client.get("/api/models/tinytransformerlm/overview").json()
    assert d["grouping"] == "tensor" and d["total"] == 29 and d["default_tensor"] == "tok_emb.weight"
    b = d["buckets"]
    assert b["name"][:3] == ["pos_emb", "causal_mask", "tok_emb.weight"]
    assert b["parameters"]["zero_fraction"][0] == 1.0  # pos_emb starts at zeros
    assert b["buffers"]["mean"][1] is not None and b["parameters"]["mean"][1] is None
    few = client.get("/api/models/tinytransformerlm/overview", params={"max_points": 4}).json()
    assert few["grouping"] != "tensor" and len(few["buckets"]["start"]) <= 4
    zoom = client.get("/api/models/tinytransformerlm/overview", params={"start": 5, "stop": 9}).json()
    assert zoom["buckets"]["start"] == [5, 6, 7, 8] and zoom["start"] == 5 and zoom["stop"] == 9
    assert client.get("/api/models/tinytransformerlm/overview", params={"max_points": 0}).status_code == 422


def test_overview_and_histogram_follow_an_applied_init(client: TestClient) -> None:
    before = client.get("/api/models/twolayernet/overview").json()
    first = hist(client, "twolayernet", tensor="fc1.bias", bins=8).json()
    plan = {"rules": [{"match": "fc1.bias", "tensor": "all", "fn": "constant_", "args": {"val": 0.5}}], "seed": 0}
    assert client.post("/api/models/twolayernet/init/apply", json=plan).status_code == 200
    after = client.get("/api/models/twolayernet/overview").json()
    i = after["buckets"]["name"].index("fc1.bias")
    assert after["buckets"]["parameters"]["mean"][i] == 0.5 != before["buckets"]["parameters"]["mean"][i]
    again = hist(client, "twolayernet", tensor="fc1.bias", bins=8).json()
    assert again["stats"]["mean"] == 0.5 and again["stats"]["quantiles"]["p50"] == 0.5 != first["stats"]["mean"]


def test_new_bins_reuse_the_statistics(client: TestClient) -> None:
    a = hist(client, "tinytransformerlm", tensor="tok_emb.weight", bins=64).json()
    b = hist(client, "tinytransformerlm", tensor="tok_emb.weight", bins=10).json()
    assert a["stats"] == b["stats"] and len(b["counts"]) == 10 and sum(b["counts"]) == a["numel"]


def test_weights_page_opens_the_linked_tensor(client: TestClient) -> None:
    r = client.get("/models/tinytransformerlm/weights", params={"tensor": "norm.weight"})
    assert r.status_code == 200
    assert 'data-selected="norm.weight"' in r.text
    # nothing per tensor in the HTML: the page fetches it
    assert "blocks.layers.1.linear2" not in r.text and len(r.text) < 8000
    bad = client.get(
        "/models/tinytransformerlm/weights",
        params={"tensor": "nope"},
        headers={"accept": "text/html"},
    )
    assert bad.status_code == 404 and "nope" in bad.text and "Traceback" not in bad.text


def test_histogram_of_large_tensor_stays_exact() -> None:
    from torchscope.inspect.histograms import tensor_histogram

    t = torch.randn(3_000_000)
    d = tensor_histogram("big", t, 64).to_dict()
    assert d["counts"] == np.histogram(t.numpy(), bins=np.asarray(d["edges"]))[0].tolist()
