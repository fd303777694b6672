"""torchscope.show / serve / stop from plain Python: one shared server, a clean stop, and a model
left bit-identical by browsing every page (the server runs in this test's own process)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from torch import nn

import torchscope
from torchscope import api

ROOT = Path(__file__).resolve().parents[2]


class BrowsedNet(nn.Module):
    """Something of everything a page reads: conv + BatchNorm, tied embedding, frozen and eval parts."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.embed = nn.Embedding(20, 4)
        self.head = nn.Linear(4, 20, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.frozen.eval()

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        pooled = self.bn(self.conv(image)).mean(dim=(2, 3))  # BatchNorm in training mode: running stats move
        return self.head(self.frozen(pooled + self.embed(tokens).mean(dim=1)))


@pytest.fixture(autouse=True)
def no_server_left() -> Iterator[None]:
    yield
    api.stop()


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_import_torchscope_stays_light() -> None:
    code = "import sys, torchscope; print(sorted(m for m in ('torch', 'fastapi', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert callable(torchscope.show) and callable(torchscope.serve) and "show" in dir(torchscope)


def test_two_show_calls_share_one_server_and_a_name_replaces() -> None:
    first = torchscope.show(nn.Linear(3, 2), name="net")
    second = torchscope.show({"encoder": nn.Linear(2, 2), "decoder": nn.Linear(2, 3)})
    assert first._server is second._server and first.url.rsplit("/", 2)[0] == second.url.rstrip("/")
    base = second.url.rstrip("/")
    assert [m["id"] for m in httpx.get(base + "/api/models").json()] == ["net", "encoder", "decoder"]
    third = torchscope.show(nn.Sequential(nn.Linear(3, 3)), name="net")  # re-run of a notebook cell
    assert third.url == first.url
    models = httpx.get(base + "/api/models").json()
    assert [(m["id"], m["class"]) for m in models] == [("net", "Sequential"), ("encoder", "Linear"), ("decoder", "Linear")]
    assert all(httpx.get(f"{base}/api/models/{m['id']}/version").json()["live"] for m in models)
    index = re.search(r"data-live='([^']*)'", httpx.get(base + "/").text)
    assert index and sorted(json.loads(index.group(1))) == ["decoder", "encoder", "net"]  # the index polls them


def test_handle_displays_as_an_iframe_and_says_when_stopped() -> None:
    shown = torchscope.show(nn.Linear(2, 2), height=640)
    page = shown._repr_html_()
    assert f'<iframe src="{shown.url}"' in page and 'height="640"' in page and 'target="_blank"' in page
    assert repr(shown) == f"torchscope: {shown.url}"
    assert httpx.get(shown.url).status_code == 200
    shown.stop()
    assert "stopped" in shown._repr_html_() and repr(shown).endswith("(stopped)")


def test_stop_leaves_no_thread_socket_or_hook_behind() -> None:
    from torch.nn.modules import module as torch_module
    from torch.optim import optimizer as torch_optimizer

    def hook_counts() -> tuple[int, ...]:
        return (len(torch_module._global_parameter_registration_hooks), len(torch_optimizer._global_optimizer_post_hooks))

    threads, hooks = _threads(), hook_counts()
    shown = torchscope.show(nn.Linear(2, 2))
    port = shown._server.port
    httpx.get(shown.url)  # a page and an API call: the thread pool has worked
    httpx.get(shown.url.replace("/models/", "/api/models/") + "/parameters")
    assert _listening(port) and hook_counts() != hooks
    shown.stop()
    assert not _listening(port)
    assert {t for t in _threads() - threads if t.is_alive()} == set()
    assert hook_counts() == hooks
    again = torchscope.show(nn.Linear(2, 2), port=port)  # the same port is free for a new server
    assert again._server.port == port and httpx.get(again.url).status_code == 200


def test_a_fixed_port_that_is_taken_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(api.ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            torchscope.show(nn.Linear(2, 2), port=port)
    running = torchscope.show(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="already runs on port"):
        torchscope.show(nn.Linear(2, 2), port=port)
    assert running.running


@pytest.mark.parametrize(
    ("models", "error"),
    [(42, "not 42|not int"), ([nn.Linear(2, 2), "x"], "not an nn.Module"), ({}, "at least one model"), ([], "at least one")],
)
def test_what_is_not_a_model_is_refused_before_anything_starts(models: Any, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        torchscope.show(models)
    assert api._current is None


def test_served_numbers_follow_training_in_python() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    shown = torchscope.show(model, name="mlp")
    api_url = shown.url.replace("/models/", "/api/models/")
    before = httpx.get(api_url + "/histogram", params={"tensor": "0.weight"}).json()
    rev = httpx.get(api_url + "/version").json()["revision"]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(32, 8)).pow(2).mean().backward()
    opt.step()
    after = httpx.get(api_url + "/histogram", params={"tensor": "0.weight"}).json()
    assert after["stats"]["mean"] == pytest.approx(model[0].weight.mean().item(), rel=1e-5)
    assert after["stats"] != before["stats"] and after["counts"] != before["counts"]
    assert httpx.get(api_url + "/version").json()["revision"] > rev
    model[0].requires_grad_(False)  # freezing from Python: the summary follows
    summary = httpx.get(api_url).json()
    assert summary["parameters"]["frozen"] == model[0].weight.numel() + model[0].bias.numel()


def _snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything browsing must leave alone, bit for bit."""

    def bits(t: torch.Tensor) -> bytes:
        return t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()

    return {
        "state": {k: (v.dtype, tuple(v.shape), bits(v)) for k, v in model.state_dict(keep_vars=True).items()},
        "non_persistent": bits(model.cache),
        "objects": [id(t) for t in [*model.parameters(), *model.buffers()]],
        "versions": [t._version for t in [*model.parameters(), *model.buffers()]],  # not even rewritten
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad is None for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "torch_rng": bits(torch.get_rng_state()),
        "python_rng": random.getstate(),
        "numpy_rng": bits(torch.from_numpy(np.random.get_state()[1].copy())),
    }


# Operations that change the model because the user asks for it on the page; every other
# operation of the OpenAPI document is browsed below (a new one must be added to one of the two).
CHANGES = {("post", "/api/models/{model_id}/init/apply"), ("post", "/api/models/{model_id}/init/reset"),
           ("post", "/api/checkpoints/{cid}/load"), ("delete", "/api/checkpoints/{cid}")}  # fmt: skip
PAGES = ["/", "/models/{model_id}", "/models/{model_id}/weights", "/models/{model_id}/init",
         "/models/{model_id}/schedules", "/models/{model_id}/forward", "/models/{model_id}/graph", "/schedules", "/checkpoints", "/checkpoints/{cid}", "/docs", "/openapi.json"]  # fmt: skip


def test_browsing_every_page_leaves_the_model_bit_identical(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BrowsedNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3)
    torch.save({"model": model.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt.pt")
    inputs = (torch.randn(2, 1, 8, 8), torch.randint(0, 20, (2, 5)))  # drawn before the RNG snapshot
    random.seed(1)
    np.random.seed(2)
    before = _snapshot(model)
    shown = torchscope.show(model, name="net", checkpoint=tmp_path / "ckpt.pt", data_dir=tmp_path, inputs=inputs)
    base = shown._server.url
    plan = {"rules": [{"match": "Linear", "tensor": "weight", "fn": "kaiming_normal_", "args": {}}], "seed": 3}
    schedule = {"optimizer": {"type": "AdamW", "lr": 0.1}, "groups": [{"match": ["conv.*"], "lr": 0.01}],
                "scheduler": {"type": "OneCycleLR", "args": {"max_lr": 0.1, "total_steps": 20}},
                "epochs": 5, "steps_per_epoch": 4, "step": "batch"}  # fmt: skip
    params = {
        "/api/models/{model_id}/histogram": {"tensor": "head.weight"},
        "/api/checkpoints/{cid}/histogram": {"key": "model/conv.weight"},
        "/api/checkpoints/{cid}/compare": {"model": "net"},
        "/api/checkpoints/{cid}/diff": {"model": "net"},
        "/api/checkpoints/{cid}/diff/histogram": {"key": "conv.weight", "model": "net"},  # state_dict keys
        "/api/models/{model_id}/graph/search": {"q": "conv"},
    }
    bodies: dict[str, Any] = {
        "/api/models/{model_id}/init/preview": plan,
        "/api/models/{model_id}/init/snippet": plan,
        "/api/checkpoints/open": {"path": "ckpt.pt"},
        "/api/checkpoints/upload": (tmp_path / "ckpt.pt").read_bytes(),
        "/api/models/{model_id}/forward": {"inputs": None},  # the inputs given to show()
        "/api/models/{model_id}/forward/modules": {"inputs": None},
        "/api/schedules/resume": {"state": sched.state_dict(), "steps": 10},
        "/api/checkpoints/{cid}/resume": {"path": "scheduler", "steps": 10},
    }
    with httpx.Client(base_url=base, timeout=60) as client:
        cid = client.get("/api/checkpoints").json()[0]["id"]

        def url(path: str) -> str:
            return path.replace("{model_id}", "net").replace("{cid}", cid)

        browsed = set()
        for path, ops in client.get("/openapi.json").json()["paths"].items():
            for method in ops:
                if (method, path) in CHANGES:
                    continue
                if method == "get":
                    r = client.get(url(path), params=params.get(path, {}))
                elif isinstance(bodies.get(path), bytes):
                    r = client.post(url(path), params={"filename": "up.pt"}, content=bodies[path],
                                    headers={"X-Torchscope": "1"})
                else:  # the LR schedule lab: groups match the model's parameters where there is one
                    plain = {**schedule, "groups": [{}, {"lr": 0.01}]}
                    r = client.post(url(path), json=bodies.get(path, schedule if "{model_id}" in path else plain))
                assert r.status_code in (200, 201), (method, path, r.text[:300])
                browsed.add((method, path))
        for page in PAGES:
            r = client.get(url(page))
            assert r.status_code == 200 and r.content, page
        assert client.get("/api/models/net/state_dict", params={"format": "safetensors"}).status_code == 200
    assert len(browsed) >= 30
    assert _snapshot(model) == before


def test_serve_blocks_until_ctrl_c_and_stops_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "serve_script.py"
    script.write_text(
        "import torch, torchscope\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())\n"
        "torchscope.serve(model, name='script-net')\n"
        "print('after serve', flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the URL, printed by show() in a plain script
        assert first.startswith("torchscope: script-net at http://127.0.0.1:"), first + (proc.stderr.read() if proc.stderr else "")
        url = first.split(" at ", 1)[1].strip()
        assert proc.stdout.readline().strip() == "torchscope: serving until Ctrl+C"
        assert httpx.get(url.replace("/models/", "/api/models/")).json()["class"] == "Sequential"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["torchscope: stopped", "after serve"] and "Traceback" not in err


def test_a_plain_script_prints_the_url_and_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "show_script.py"
    script.write_text("import torch, torchscope\nshown = torchscope.show(torch.nn.Linear(2, 2), name='tiny')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("torchscope: tiny at http://127.0.0.1:") and lines[0].endswith("/models/tiny")
    assert "torchscope.serve()" in lines[1]  # the server ends with the script: say how to keep it


def test_a_checkpoint_that_cannot_be_opened_is_a_warning_and_the_model_is_served(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.warns(UserWarning, match="broken.pt"):
        shown = torchscope.show(nn.Linear(2, 2), checkpoint=bad)
    assert httpx.get(shown.url).status_code == 200
    with pytest.raises(FileNotFoundError, match="no such file"):
        torchscope.show(nn.Linear(2, 2), checkpoint=tmp_path / "missing.pt")


def test_writes_that_bypass_version_counters_are_not_served_stale() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    shown = torchscope.show(model, name="hand-trained")
    api_url = shown.url.replace("/models/", "/api/models/")

    def served() -> tuple[dict[str, Any], dict[str, Any]]:
        hist = httpx.get(api_url + "/histogram", params={"tensor": "0.weight"}).json()
        overview = httpx.get(api_url + "/overview").json()
        return hist["stats"], overview

    stats, overview = served()
    assert served() == (stats, overview)  # memoised: the same answer
    version = model[0].weight._version
    model[0].weight.data.normal_(0, 0.02)  # the old idiom: .data has a version counter of its own
    model[0].bias.detach().numpy()[:] = 0.5  # a NumPy view: no counter at all
    assert model[0].weight._version == version
    new_stats, new_overview = served()
    assert new_stats["mean"] == pytest.approx(model[0].weight.mean().item(), rel=1e-5, abs=1e-7)
    assert new_stats["std"] == pytest.approx(model[0].weight.std().item(), rel=1e-4)
    assert new_overview != overview
    assert httpx.get(api_url + "/histogram", params={"tensor": "0.bias"}).json()["stats"]["mean"] == 0.5
