"""Init lab endpoints over HTTP: catalogue, preview/apply/reset, downloads, snippet, every error case."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_model

from torchscope.examples import SmallCNN, TinyTransformerLM
from torchscope.settings import Settings

KAIMING = {
    "match": "Conv2d",
    "tensor": "weight",
    "fn": "kaiming_normal_",
    "args": {"nonlinearity": "relu"},
}


def served(client: TestClient, model_id: str) -> torch.nn.Module:
    module: torch.nn.Module = client.app.state.registry.get(model_id).module  # type: ignore[attr-defined]
    return module


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_schemes_catalogue(client: TestClient) -> None:
    d = client.get("/api/init/schemes").json()
    names = [s["name"] for s in d["schemes"]]
    assert {"xavier_uniform_", "kaiming_normal_", "orthogonal_", "dirac_", "default"} <= set(names)
    by = {s["name"]: s for s in d["schemes"]}
    assert by["dirac_"]["min_rank"] == 3 and by["dirac_"]["max_rank"] == 5
    assert by["eye_"]["min_rank"] == by["eye_"]["max_rank"] == 2
    assert [a["name"] for a in by["trunc_normal_"]["args"]] == ["mean", "std", "a", "b"]
    assert d["gains"]["tanh"] == pytest.approx(5 / 3)


def test_preview_changes_nothing_and_is_deterministic(client: TestClient) -> None:
    module = served(client, "smallcnn")
    before = snapshot(module)
    plan = {"rules": [KAIMING, {"match": "*.bias", "fn": "zeros_"}], "seed": 11}
    a = client.post("/api/models/smallcnn/init/preview", json=plan, params={"bins": 16})
    b = client.post("/api/models/smallcnn/init/preview", json=plan, params={"bins": 16})
    assert a.status_code == 200 and a.json() == b.json()
    assert unchanged(module, before)
    first = a.json()["tensors"][0]
    assert first["name"] == "features.0.0.weight" and first["theory"]["kind"] == "normal"
    assert len(first["after"]["counts"]) == 16 and len(first["expected"]) == 16
    assert first["before"]["counts"] != first["after"]["counts"]
    assert client.get("/api/models/smallcnn").json()["modified"] is False


def test_apply_then_reset_bit_exact(client: TestClient) -> None:
    module = served(client, "tinytransformerlm")
    before = snapshot(module)
    r = client.post("/api/models/tinytransformerlm/init/apply",
                    json={"rules": [{"match": "*", "tensor": "weight", "fn": "normal_", "args": {"std": 0.5}}], "seed": 3})  # fmt: skip
    assert r.status_code == 200 and r.json()["modified"] is True and r.json()["count"] > 0
    assert not unchanged(module, before)
    assert client.get("/api/models/tinytransformerlm").json()["modified"] is True
    h = client.get(
        "/api/models/tinytransformerlm/histogram", params={"tensor": "norm.weight"}
    ).json()
    assert h["stats"]["std"] == pytest.approx(0.5, rel=0.3)  # the histogram shows the new weights
    r = client.post("/api/models/tinytransformerlm/init/reset", headers={"X-Torchscope": "1"})
    assert r.status_code == 200 and r.json()["restored"] > 0
    assert unchanged(module, before)


@pytest.mark.parametrize(
    ("plan", "needle", "extra"),
    [
        (
            {"rules": [{"match": "Linear", "tensor": "bias", "fn": "xavier_uniform_"}]},
            "needs a >= 2-D",
            {"rule": 0, "tensor": "classifier.2.bias"},
        ),
        (
            {"rules": [KAIMING, {"match": "*num_batches_tracked", "fn": "uniform_"}]},
            "int64",
            {"rule": 1},
        ),
        (
            {"rules": [{"match": "Conv1d", "fn": "zeros_"}]},
            "selects no tensor",
            {"rule": 0, "match": "Conv1d"},
        ),
        (
            {"rules": [{"match": "Linear", "fn": "he_normal_"}]},
            "unknown init function",
            {"rule": 0, "field": "fn"},
        ),
        (
            {"rules": [{"match": "Linear", "fn": "normal_", "args": {"sd": 1}}]},
            "no argument 'sd'",
            {"rule": 0},
        ),
        (
            {"rules": [{"match": "Linear", "fn": "sparse_"}]},
            "needs argument 'sparsity'",
            {"rule": 0},
        ),
        ({"rules": [KAIMING], "seed": -5}, "seed", {"field": "seed"}),
        ({"rules": []}, "non-empty", {"field": "rules"}),
        ({"rules": [KAIMING], "extra": 1}, "unknown plan field", {}),
    ],
)
def test_refused_plans_are_422_naming_rule_and_leave_model_untouched(
    client: TestClient, plan: dict[str, Any], needle: str, extra: dict[str, Any]
) -> None:
    module = served(client, "smallcnn")
    before = snapshot(module)
    for action in ("preview", "apply", "snippet"):
        r = client.post(f"/api/models/smallcnn/init/{action}", json=plan)
        assert r.status_code == 422, (action, r.json())
        body = r.json()
        assert needle in body["detail"]
        for k, v in extra.items():
            assert body[k] == v
    assert unchanged(module, before)
    assert client.get("/api/models/smallcnn").json()["modified"] is False


@pytest.mark.parametrize("body", ["not json", "[1, 2]"])
def test_malformed_bodies(client: TestClient, body: str) -> None:
    r = client.post(
        "/api/models/smallcnn/init/preview",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"]


def test_orthogonal_on_half_model_is_refused(make_client: Any) -> None:
    c = make_client(Settings(specs=["tests.fixtures.models:HalfPrecision"]))
    r = c.post(
        "/api/models/halfprecision/init/apply",
        json={"rules": [{"match": "a.weight", "fn": "orthogonal_"}]},
    )
    assert (
        r.status_code == 422
        and "float16" in r.json()["detail"]
        and r.json()["tensor"] == "a.weight"
    )


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_state_dict_download_loads_strict(client: TestClient, fmt: str, tmp_path: Path) -> None:
    client.post("/api/models/tinytransformerlm/init/apply",
                json={"rules": [{"match": "*.bias", "fn": "ones_"}], "seed": 0})  # fmt: skip
    r = client.get("/api/models/tinytransformerlm/state_dict", params={"format": fmt})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="tinytransformerlm.{fmt}"'
    fresh = TinyTransformerLM()
    if fmt == "pt":
        fresh.load_state_dict(torch.load(io.BytesIO(r.content), weights_only=True), strict=True)
    else:  # tied weights are stored once (as save_model does): load_model re-ties them
        (tmp_path / "m.safetensors").write_bytes(r.content)
        load_model(fresh, str(tmp_path / "m.safetensors"), strict=True)
        assert "tok_emb.weight" not in safetensors_load(r.content)
    for k, v in served(client, "tinytransformerlm").state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k  # the current (modified) weights


def test_state_dict_bad_format_and_lazy_model(make_client: Any, client: TestClient) -> None:
    r = client.get("/api/models/smallcnn/state_dict", params={"format": "onnx"})
    assert r.status_code == 422 and "format" in r.json()["detail"]
    c = make_client(Settings(specs=["tests.fixtures.models:LazyNet"]))
    r = c.get("/api/models/lazynet/state_dict")
    assert r.status_code == 409 and "lazy" in r.json()["detail"]


def test_snippet_endpoint_returns_runnable_code(client: TestClient) -> None:
    plan = {"rules": [KAIMING, {"match": "*.bias", "fn": "zeros_"}], "seed": 9}
    code = client.post("/api/models/smallcnn/init/snippet", json=plan).json()["code"]
    client.post("/api/models/smallcnn/init/apply", json=plan)
    ns: dict[str, Any] = {}
    exec(compile(code, "<snippet>", "exec"), ns)
    torch.manual_seed(0)
    fresh = SmallCNN()
    ns["weights_init"](fresh)
    for k, v in served(client, "smallcnn").state_dict().items():
        if k.endswith(("0.0.weight", "2.0.weight", "4.0.weight", "bias")):
            assert torch.equal(fresh.state_dict()[k], v), k


def test_init_page_renders_catalogue(client: TestClient) -> None:
    r = client.get("/models/smallcnn/init")
    assert r.status_code == 200 and "kaiming_normal_" in r.text and 'id="schemes-data"' in r.text


def test_meta_model_previews_on_a_materialised_copy_and_refuses_changes(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchscope.inspect.materialise as M

    c = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"], meta=True))
    plan = {"rules": [{"match": "Linear", "tensor": "weight", "fn": "xavier_uniform_", "args": {}}], "seed": 3}
    d = c.post("/api/models/twolayernet/init/preview", json=plan).json()
    assert d["materialised"] is True and [t["name"] for t in d["tensors"]] == ["fc1.weight", "fc2.weight"]
    # "now" is torch's default init of a real copy: kaiming_uniform_(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    fan_in = d["tensors"][0]["shape"][1]
    assert 0 < d["tensors"][0]["before"]["stats"]["max"] <= fan_in**-0.5
    assert d["tensors"][0]["after"]["stats"]["nan"] == 0
    for action in ("apply", "reset"):
        r = c.post(f"/api/models/twolayernet/init/{action}", json=plan)
        assert r.status_code == 409 and "meta device" in r.json()["detail"]
    served = c.app.state.registry.get("twolayernet").module  # type: ignore[attr-defined]
    assert all(p.is_meta for p in served.parameters())  # the served model is untouched
    page = c.get("/models/twolayernet/init").text
    assert 'id="meta-notice" data-materialise="1"' in page and "download-pt" not in page
    # too large to materialise: said on the page, and a clear 409 from the API
    monkeypatch.setattr(M, "MAX_MATERIALISE", 10)
    assert 'data-materialise="0"' in c.get("/models/twolayernet/init").text
    r = c.post("/api/models/twolayernet/init/preview", json=plan)
    assert r.status_code == 409 and "too large to materialise" in r.json()["detail"]


def test_applied_plans_are_remembered_until_reset(client: TestClient) -> None:
    base = "/api/models/twolayernet"
    assert client.get(base + "/init/applied").json() == {"modified": False, "plans": []}
    first = {"rules": [{"match": "Linear", "tensor": "weight", "fn": "xavier_uniform_", "args": {"gain": 2}}], "seed": 3}
    second = {"rules": [{"match": "*.bias", "tensor": "all", "fn": "zeros_", "args": {}}], "seed": 4}
    for plan in (first, second):
        assert client.post(base + "/init/apply", json=plan).status_code == 200
    # a refused plan is not remembered (it changed nothing)
    assert client.post(base + "/init/apply", json={"rules": [{"match": "Linear", "fn": "nope_"}]}).status_code == 422
    got = client.get(base + "/init/applied").json()
    assert got["modified"] is True
    assert [p["seed"] for p in got["plans"]] == [3, 4]
    assert got["plans"][0]["rules"][0] == {"match": "Linear", "tensor": "weight", "fn": "xavier_uniform_", "args": {"gain": 2}}
    assert "modified" in client.get("/").text and "modified" in client.get("/models/twolayernet").text
    assert client.post(base + "/init/reset", headers={"X-Torchscope": "1"}).status_code == 200
    assert client.get(base + "/init/applied").json() == {"modified": False, "plans": []}
    assert 'id="modified-badge"' not in client.get("/models/twolayernet").text
