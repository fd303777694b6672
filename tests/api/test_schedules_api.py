"""The schedule lab's HTTP API: contract, model-based groups, exports, and precise 4xx (never a 500)."""

from __future__ import annotations

import base64
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch.optim import lr_scheduler as L

from torchscope.examples import TwoLayerNet

TOL = 1e-12


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9},
        "groups": [{}, {"lr": 0.01}],
        "scheduler": {"type": "SequentialLR", "args": {"milestones": [5], "schedulers": [
            {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
            {"type": "CosineAnnealingLR", "args": {"T_max": 15}}]}},
        "epochs": 20,
        "steps_per_epoch": 4,
        "step": "epoch",
    }
    b.update(over)
    return b


def test_catalogue(client: TestClient) -> None:
    r = client.get("/api/schedulers")
    assert r.status_code == 200
    data = r.json()
    names = {s["name"] for s in data["schedulers"]}
    assert names == set(L.__all__) - {"LRScheduler"} | {"SWALR"}  # plus torch.optim.swa_utils.SWALR
    step = next(s for s in data["schedulers"] if s["name"] == "StepLR")
    assert [a["name"] for a in step["args"]] == ["step_size", "gamma"]
    assert step["args"][1]["default"] == 0.1 and step["args"][0]["required"] is True
    assert {o["name"] for o in data["optimizers"]} >= {"SGD", "Adam", "AdamW", "RMSprop"}


def test_preview_contract_and_values_equal_torch(client: TestClient) -> None:
    r = client.post("/api/schedules/preview", json=body())
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["x"] == list(range(80))
    assert len(data["groups"]) == 2 and isinstance(data["warnings"], list)
    assert "preview;dur=" in r.headers["server-timing"]
    # stepping torch by hand, once per epoch after the last batch
    opt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 0.01}], lr=0.1, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = L.SequentialLR(opt, [L.LinearLR(opt, 0.1, total_iters=5), L.CosineAnnealingLR(opt, 15)], [5])
        ref = []
        for _ in range(20):
            for _ in range(4):
                ref.append(sched.get_last_lr())
            sched.step()
    np.testing.assert_allclose(np.array([g["lr"] for g in data["groups"]]), np.array(ref).T, rtol=0, atol=TOL)
    assert data["groups"][0]["momentum"] == [0.9] * 80


def test_fast_json_encoder_writes_what_json_dumps_writes() -> None:
    import json

    from torchscope.inspect import schedules as S

    for step in ("epoch", "batch"):
        b = body(step=step, scheduler={"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 30}})
        result = S.preview(S.parse_request(b))  # per epoch: runs of equal values; OneCycle past its end: nulls
        assert S.dumps(result.to_dict("raw")) == json.dumps(result.to_dict("json"), separators=(",", ":"))


def test_overflowing_lr_is_null_not_a_500(client: TestClient) -> None:
    r = client.post("/api/schedules/preview", json=body(scheduler={"type": "ExponentialLR", "args": {"gamma": 1e100}}))
    assert r.status_code == 200
    lr = r.json()["groups"][0]["lr"]
    assert lr[0] == 0.1 and lr[-1] is None


def test_b64_encoding_is_the_same_float64_values(client: TestClient) -> None:
    plain = client.post("/api/schedules/preview", json=body()).json()
    packed = client.post("/api/schedules/preview", json=body(encoding="b64")).json()
    lr = np.frombuffer(base64.b64decode(packed["groups"][1]["lr"]["bdata"]), dtype="<f8")
    assert lr.tolist() == plain["groups"][1]["lr"]


def test_model_preview_groups_by_pattern(make_client: Any) -> None:
    from torchscope.settings import Settings

    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"]))
    model_id = client.get("/api/models").json()[0]["id"]
    req = body(groups=[{"name": "first", "match": ["fc1.*"], "lr": 0.001, "momentum": 0.99},
                       {"name": "biases", "match": ["*.bias"], "weight_decay": 0.0}],
               scheduler={"type": "StepLR", "args": {"step_size": 3, "gamma": 0.5}})
    data = client.post(f"/api/models/{model_id}/schedules/preview", json=req).json()
    assert [g["name"] for g in data["groups"]] == ["first", "biases", "default"]
    assert data["groups"][0]["params"] == ["fc1.weight", "fc1.bias"]
    assert data["groups"][1]["params"] == ["fc2.bias"] and data["groups"][2]["params"] == ["fc2.weight"]
    assert data["membership"]["double_matches"][0]["param"] == "fc1.bias"
    assert any("fc1.bias matches groups first, biases" in w for w in data["warnings"])
    # the same as torch.optim.SGD([{...}, {...}, {...}], lr=0.1, momentum=0.9) on the real model
    net = TwoLayerNet()
    opt = torch.optim.SGD([{"params": [net.fc1.weight, net.fc1.bias], "lr": 0.001, "momentum": 0.99},
                           {"params": [net.fc2.bias], "weight_decay": 0.0}, {"params": [net.fc2.weight]}],
                          lr=0.1, momentum=0.9)
    sched = L.StepLR(opt, 3, 0.5)
    ref_lr, ref_m = [], []
    for _ in range(20):
        for _ in range(4):
            ref_lr.append(sched.get_last_lr())
            ref_m.append([g["momentum"] for g in opt.param_groups])
        opt.step()
        sched.step()
    np.testing.assert_allclose(np.array([g["lr"] for g in data["groups"]]), np.array(ref_lr).T, rtol=0, atol=TOL)
    np.testing.assert_allclose(np.array([g["momentum"] for g in data["groups"]]), np.array(ref_m).T, rtol=0, atol=TOL)


def test_groups_membership_endpoint_and_model_untouched(make_client: Any) -> None:
    from torchscope.settings import Settings

    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"]))
    model_id = client.get("/api/models").json()[0]["id"]
    before = client.get(f"/api/models/{model_id}").json()
    r = client.post(f"/api/models/{model_id}/schedules/groups",
                    json={"groups": [{"name": "norms", "match": ["LayerNorm"]}, {"name": "l1", "match": ["fc1.*"]}]})
    assert r.status_code == 200
    m = r.json()
    assert m["empty_groups"] == ["norms"]
    assert [g["count"] for g in m["groups"]] == [0, 2, 2]
    client.post(f"/api/models/{model_id}/schedules/preview", json=body(groups=[{"match": ["fc1.*"]}]))
    assert client.get(f"/api/models/{model_id}").json() == before  # not modified


def test_snippet_and_csv(client: TestClient) -> None:
    r = client.post("/api/schedules/snippet", json=body())
    assert r.status_code == 200
    code = r.json()["code"]
    assert "lr_scheduler.SequentialLR(" in code and "optimizer.step()" in code and "scheduler.step()" in code
    r = client.post("/api/schedules/snippet", json=body(format="py"))
    assert r.headers["content-type"].startswith("text/x-python")
    r = client.post("/api/schedules/csv", json=body())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.strip().split("\n")
    assert lines[0].startswith("step,epoch,group0_lr,group0_momentum,group1_lr") and len(lines) == 81


def test_model_snippet_writes_groups_as_the_typed_patterns(client: TestClient) -> None:
    r = client.post("/api/models/twolayernet/schedules/snippet", json=body(groups=[{"name": "head", "match": ["fc2.*"]}]))
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    assert "    ['fc2.*'],  # head: 2 parameter(s)" in code
    assert "'fc1.weight'" not in code  # no parameter-name lists (issue 8: 98 names on one line for GPT-2)


@pytest.mark.parametrize(
    ("over", "field", "fragment"),
    [
        ({"scheduler": {"type": "Nope"}}, "scheduler.type", "unknown scheduler"),
        ({"scheduler": {"type": "StepLR", "args": {"step_size": 2, "foo": 1}}}, "scheduler.args.foo", "no argument 'foo'"),
        ({"scheduler": {"type": "CosineAnnealingLR", "args": {"T_max": 0}}}, "scheduler.args.T_max", ">= 1"),
        ({"scheduler": {"type": "SequentialLR", "args": {"milestones": [3, 3], "schedulers": [{"type": "StepLR", "args": {
            "step_size": 2}}] * 3}}}, "scheduler.args.milestones", "increasing"),
        ({"scheduler": {"type": "LambdaLR", "args": {"lr_lambda": "epoch **"}}}, "scheduler.args.lr_lambda", "syntax error"),
        ({"scheduler": {"type": "ConstantLR", "args": {"factor": -1}}}, "scheduler.args.factor", ">"),
        ({"epochs": -3}, "epochs", ">= 1"),
        ({"optimizer": {"type": "SGD", "lr": "big"}}, "optimizer.lr", "must be a number"),
        ({"encoding": "xml"}, "encoding", "json"),
    ],
)
def test_bad_input_is_422_with_field(client: TestClient, over: dict[str, Any], field: str, fragment: str) -> None:
    r = client.post("/api/schedules/preview", json=body(**over))
    assert r.status_code == 422, r.text
    data = r.json()
    assert data["field"] == field
    assert fragment in data["detail"]
    assert client.get("/api/schedulers").status_code == 200  # still serving


@pytest.mark.parametrize(
    "over",
    [
        {"step": ["epoch"]},
        {"epochs": 1e308},
        {"scheduler": {"type": "StepLR", "args": {"step_size": 1e308}}},
        {"scheduler": {"type": ["StepLR"]}},
        {"scheduler": {"type": "StepLR", "args": [1, 2]}},
        {"scheduler": {"type": "SequentialLR", "args": {"milestones": [2], "schedulers": [{"type": "StepLR"}, 3]}}},
        {"groups": [{}, None]},
        {"optimizer": {"type": "Adam", "betas": [2, "x"]}},
        {"metrics": "1 2 zwei", "scheduler": {"type": "ReduceLROnPlateau"}},
        {"metric_shape": ["plateau"], "scheduler": {"type": "ReduceLROnPlateau"}},
        {"scheduler": {"type": "LambdaLR", "args": {"lr_lambda": 12}}},
        {"scheduler": {"type": "LambdaLR", "args": {"lr_lambda": {"x": 1}}}},
        {"max_points": "many"},
        {"overlay_batch_mistake": "yes"},
    ],
)
def test_hostile_values_are_4xx_never_500(client: TestClient, over: dict[str, Any]) -> None:
    for url in ("/api/schedules/preview", "/api/schedules/snippet", "/api/schedules/csv"):
        r = client.post(url, json=body(**over))
        assert r.status_code < 500, (url, r.text)
        if r.status_code != 200:
            assert r.status_code == 422 and r.json()["detail"]


def test_malformed_json_and_unknown_model(client: TestClient) -> None:
    r = client.post("/api/schedules/preview", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "detail" in r.json()
    r = client.post("/api/schedules/preview", json=[1, 2])
    assert r.status_code == 422
    r = client.post("/api/models/nope/schedules/preview", json=body())
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = client.post("/api/models/twolayernet/schedules/preview", json=body(groups=[{"lr": 0.1}]))
    assert r.status_code == 422 and r.json()["field"] == "groups[0].match"


def test_pages_render(client: TestClient) -> None:
    r = client.get("/schedules")
    assert r.status_code == 200 and 'id="chart"' in r.text and "catalogue-data" in r.text
    r = client.get("/models/twolayernet/schedules")
    assert r.status_code == 200 and 'data-model="twolayernet"' in r.text and "membership-data" in r.text
    r = client.get("/models/nope/schedules")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
