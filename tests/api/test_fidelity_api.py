"""Issue 12 over HTTP: overflow is an answer not a 500, resume endpoints, model matches, the lab page."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save_file
from torch.optim import lr_scheduler as L

from torchscope.examples import TwoLayerNet
from torchscope.settings import Settings


def test_cyclic_exp_range_overflow_over_100k_steps_is_answered_not_a_500(client: TestClient) -> None:
    body = {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "groups": [{}],
            "scheduler": {"type": "CyclicLR", "args": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2000,
                                                       "mode": "exp_range", "gamma": 1.01}},
            "epochs": 100, "steps_per_epoch": 1000, "step": "batch", "max_points": 2000}
    r = client.post("/api/schedules/preview", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    text = data["warnings"][data["warning_codes"].index("stepped-past-end")]
    assert "call number 71333 (after optimizer step 71332: epoch 71, batch 332)" in text
    assert "OverflowError" in text and "gamma > 1" in text


@pytest.fixture
def training(tmp_path: Path) -> tuple[Path, list[list[float]]]:
    """A training checkpoint as a script writes one, and the lrs the run would use next (the reference)."""
    model = TwoLayerNet()
    opt = torch.optim.AdamW([{"params": [model.fc1.weight, model.fc2.weight]},
                             {"params": [model.fc1.bias, model.fc2.bias], "weight_decay": 0.0}], lr=1e-3)
    sched = L.OneCycleLR(opt, [0.01, 0.005], total_steps=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(40):
            sched.step()
        path = tmp_path / "train.pt"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
                    "step": 40}, path)
        ref = [[g["lr"] for g in opt.param_groups]]
        for _ in range(60):  # to last_epoch 100 = total_steps: the last step torch takes
            sched.step()
            ref.append([g["lr"] for g in opt.param_groups])
    return path, ref


def test_resume_an_opened_checkpoint_and_a_pasted_state(make_client: Any, training: tuple[Path, list[list[float]]]) -> None:
    path, ref = training
    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"], checkpoints=[path]))
    detail = client.get("/api/checkpoints/train-pt").json()
    assert detail["schedulers"][0]["path"] == "lr_scheduler" and detail["schedulers"][0]["last_epoch"] == 40
    r = client.post("/api/checkpoints/train-pt/resume", json={"path": "lr_scheduler", "steps": 60})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "OneCycleLR" and out["x"][:2] == [40, 41] and out["optimizer_path"] == "optimizer"
    assert [list(v) for v in zip(out["groups"][0]["lr"], out["groups"][1]["lr"], strict=True)] == ref
    for bad, field in (({"path": "nope"}, None), ({"path": "lr_scheduler", "steps": 0}, None),
                       ({"path": "lr_scheduler", "scheduler_type": "StepLR"}, "scheduler_type")):
        r = client.post("/api/checkpoints/train-pt/resume", json=bad)
        assert r.status_code in (404, 422), r.text
        if field:
            assert r.json()["field"] == field
    # The same state pasted as JSON, with the optimizer's param_groups: the same answer.
    raw = torch.load(path, weights_only=True)
    body = {"state": json.loads(json.dumps(raw["lr_scheduler"])), "steps": 60,
            "optimizer": {"param_groups": json.loads(json.dumps(raw["optimizer"]["param_groups"]))}}
    r = client.post("/api/schedules/resume", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["groups"] == out["groups"]
    r = client.post("/api/schedules/resume", json={"state": {"optimizer": 1}, "steps": 3})
    assert r.status_code == 422 and "not a state_dict" in r.json()["detail"]
    # The lab lists it, and the checkpoint page links to it
    lab = client.get("/schedules?checkpoint=train-pt&path=lr_scheduler")
    assert lab.status_code == 200 and '"resume_from": {"checkpoint": "train-pt", "path": "lr_scheduler"}' in lab.text
    page = client.get("/checkpoints/train-pt")
    assert "/schedules?checkpoint=train-pt&amp;path=lr_scheduler" in page.text


def test_matches_rank_models_and_the_page_opens_on_the_best(make_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "mlp.safetensors"
    save_file(TwoLayerNet().state_dict(), path)
    client = make_client(Settings(specs=["torchscope.examples:SmallCNN", "torchscope.examples:TwoLayerNet"], checkpoints=[path]))
    ranked = client.get("/api/checkpoints/mlp-safetensors/matches").json()
    assert [r["model"] for r in ranked] == ["twolayernet", "smallcnn"]
    compare = client.get("/api/checkpoints/mlp-safetensors/compare", params={"model": "smallcnn"}).json()
    assert (compare["matched"], compare["matched_weights"], compare["matched_counters"]) == (3, 0, 3)
    page = client.get("/checkpoints/mlp-safetensors").text
    assert '<option value="twolayernet" selected>' in page


def test_resume_work_is_bounded(client: TestClient) -> None:
    # steps x groups x saved schedulers is capped like a preview's work (issue 9's budget)
    opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(64)], lr=0.1)
    state = torch.optim.lr_scheduler.StepLR(opt, step_size=10).state_dict()
    r = client.post("/api/schedules/resume", json={"state": state, "steps": 300_000})
    assert r.status_code == 422
    assert r.json()["rule"] == "max_preview_work" and r.json()["detail"].startswith("steps: 300,000 steps x 64")
    assert client.post("/api/schedules/resume", json={"state": state, "steps": 1000}).status_code == 200
