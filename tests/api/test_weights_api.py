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
    assert all(row["stats"] is None for row in ov["tensors"])
    # the server keeps serving
    assert c.get(f"/api/models/{lazy}/overview").status_code == 200


def test_overview_rows_in_depth_order(client: TestClient) -> None:
    d = client.get("/api/models/tinytransformerlm/overview").json()
    names = [r["name"] for r in d["tensors"]]
    assert names[0] == "pos_emb" and names[1] == "causal_mask" and names[2] == "tok_emb.weight"
    assert "lm_head.weight" not in names
    tok = d["tensors"][2]
    assert tok["aliases"] == ["lm_head.weight"] and tok["module_type"] == "Embedding"
    ref = TinyTransformerLM()
    assert tok["numel"] == ref.tok_emb.weight.numel()
    assert d["tensors"][0]["stats"]["zero_fraction"] == 1.0  # pos_emb starts at zeros


def test_weights_page_opens_the_linked_tensor(client: TestClient) -> None:
    r = client.get("/models/tinytransformerlm/weights", params={"tensor": "norm.weight"})
    assert r.status_code == 200
    assert 'data-selected="norm.weight"' in r.text
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
