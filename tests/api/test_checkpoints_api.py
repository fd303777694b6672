"""The checkpoints API over a real app (lifespan runs): every answer, every error, the server keeps serving."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from tests.fixtures.checkpoints import ddp_state_dict, lying_safetensors, write_zoo
from torchscope.examples import TwoLayerNet
from torchscope.settings import Settings

MakeClient = Callable[[Settings], TestClient]
W = {"X-Torchscope": "1"}  # what the pages send with every write (a form on another site cannot)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def served(zoo: dict[str, Path], make_client: MakeClient, tmp_path: Path) -> TestClient:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "two_layer.pth").write_bytes(zoo["state_dict"].read_bytes())
    (data / "escape.pth").symlink_to(zoo["training"])
    settings = Settings(
        specs=["torchscope.examples:TwoLayerNet", "torchscope.examples:TinyTransformerLM"],
        checkpoints=[zoo["training"], zoo["safetensors"], zoo["whole_model"], zoo["malicious"]],
        data_dir=data,
        max_upload_mb=1,
    )
    return make_client(settings)


def test_list_opens_startup_files_and_records_refusals(served: TestClient, zoo: dict[str, Path]) -> None:
    assert [c["id"] for c in served.get("/api/checkpoints").json()] == ["training-ckpt", "two_layer-safetensors"]
    body = served.get("/api/checkpoints/overview").json()
    assert [c["id"] for c in body["checkpoints"]] == ["training-ckpt", "two_layer-safetensors"]
    refused = {Path(f["path"]).name: f for f in body["failures"]}
    assert set(refused) == {"whole_model.pt", "malicious.pth"}
    assert "torchscope.examples.TwoLayerNet" in refused["whole_model.pt"]["detail"]
    assert "posix.system" in refused["malicious.pth"]["detail"]
    assert not zoo["marker"].exists()
    assert body["files"] == [{"path": "sub/two_layer.pth", "bytes": zoo["state_dict"].stat().st_size}]


def test_detail_contract(served: TestClient, zoo: dict[str, Path]) -> None:
    body = served.get("/api/checkpoints/training-ckpt").json()
    raw = torch.load(zoo["training"], weights_only=True)
    assert {"id", "name", "format", "tensors", "other", "optimizer"} <= set(body)
    rows = {t["key"]: t for t in body["tensors"]}
    w = raw["model"]["fc1.weight"]
    assert rows["model/fc1.weight"] == {
        "key": "model/fc1.weight", "shape": list(w.shape), "dtype": "float32",
        "numel": w.numel(), "bytes": w.numel() * 4, "group": "model",
    }
    assert body["other"]["epoch"] == 7
    assert body["optimizer"]["param_groups"][0]["lr"] == raw["optimizer"]["param_groups"][0]["lr"]
    assert body["optimizer"]["params"][0]["state"]["exp_avg"] == {"key": "optimizer/state/0/exp_avg"}


def test_unknown_ids_are_404(served: TestClient) -> None:
    r = served.get("/api/checkpoints/nope")
    assert r.status_code == 404 and r.json()["detail"] == "no checkpoint with id 'nope'"
    r = served.get("/api/checkpoints/training-ckpt/compare", params={"model": "nope"})
    assert r.status_code == 404 and "no model with id 'nope'" in r.json()["detail"]
    r = served.get("/api/checkpoints/training-ckpt/histogram", params={"key": "model/nope"})
    assert r.status_code == 404 and "no tensor 'model/nope'" in r.json()["detail"]


def test_histogram_uses_the_shared_machinery(served: TestClient, zoo: dict[str, Path]) -> None:
    from torchscope.inspect import histograms
    raw = torch.load(zoo["training"], weights_only=True)
    r = served.get("/api/checkpoints/training-ckpt/histogram", params={"key": "optimizer/state/0/exp_avg", "bins": 16})
    assert r.status_code == 200
    expected = histograms.tensor_histogram("optimizer/state/0/exp_avg", raw["optimizer"]["state"][0]["exp_avg"], bins=16).to_dict()
    assert r.json() == expected


def test_diff_histogram_overlay(served: TestClient, zoo: dict[str, Path]) -> None:
    from torchscope.inspect import histograms

    r = served.get("/api/checkpoints/training-ckpt/diff/histogram", params={"key": "fc1.weight", "other": "two_layer-safetensors", "bins": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    w = torch.load(zoo["training"], weights_only=True)["model"]["fc1.weight"]
    assert body["a"] == body["b"] == histograms.tensor_histogram("fc1.weight", w, bins=8).to_dict()
    r = served.get("/api/checkpoints/training-ckpt/diff/histogram", params={"key": "fc9.weight", "model": "twolayernet"})
    assert r.status_code == 404 and "no tensor 'fc9.weight'" in r.json()["detail"]
    r = served.get("/api/checkpoints/training-ckpt/diff/histogram", params={"key": "fc1.weight"})
    assert r.status_code == 422


def test_compare_equals_torch_and_hints(served: TestClient, make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "ddp.pt"
    model = TwoLayerNet()
    torch.save(ddp_state_dict(model), path)
    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"], checkpoints=[path]))
    r = client.get("/api/checkpoints/ddp-pt/compare", params={"model": "twolayernet"})
    body = r.json()
    with pytest.raises(RuntimeError) as err:
        copy.deepcopy(model).load_state_dict(torch.load(path, weights_only=True))
    assert body["torch_message"] == str(err.value)
    assert body["missing"] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert body["unexpected"] == [f"module.{k}" for k in body["missing"]]
    assert body["hints"][0]["fix"] == {"strip_prefix": "module."} and "DataParallel" in body["hint"]
    fixed = client.get("/api/checkpoints/ddp-pt/compare", params={"model": "twolayernet", "strip_prefix": "module."}).json()
    assert fixed["strict_ok"] and fixed["missing"] == [] and fixed["torch_message"] is None


def test_compare_reports_optimizer_names_guess(served: TestClient) -> None:
    body = served.get("/api/checkpoints/training-ckpt/compare", params={"model": "twolayernet"}).json()
    assert body["strict_ok"]
    assert body["optimizer_names"]["names"] == {"0": "fc1.weight", "1": "fc1.bias", "2": "fc2.weight", "3": "fc2.bias"}
    assert body["optimizer_names"]["warning"].startswith("guess")
    other = served.get("/api/checkpoints/training-ckpt/compare", params={"model": "tinytransformerlm"}).json()
    assert not other["strict_ok"] and other["shape_mismatch"] == [] and len(other["missing"]) > 10


def test_load_strict_refused_then_loaded_and_reset_restores(served: TestClient, zoo: dict[str, Path]) -> None:
    app = served.app
    loaded = app.state.registry.get("tinytransformerlm")  # type: ignore[attr-defined]
    r = served.post("/api/checkpoints/training-ckpt/load", json={"model": "tinytransformerlm"})
    assert r.status_code == 409 and "nothing was changed" in r.json()["detail"] and not loaded.modified

    two = app.state.registry.get("twolayernet")  # type: ignore[attr-defined]
    before = {k: v.clone() for k, v in two.module.state_dict().items()}
    r = served.post("/api/checkpoints/training-ckpt/load", json={"model": "twolayernet", "strict": True})
    assert r.status_code == 200, r.text
    assert r.json()["loaded"] == 4 and two.modified
    raw = torch.load(zoo["training"], weights_only=True)["model"]
    for k, v in raw.items():
        assert torch.equal(two.module.state_dict()[k], v)
    two.reset()  # what the init lab's reset does
    for k, v in before.items():
        assert torch.equal(two.module.state_dict()[k], v)


def test_load_validation_errors(served: TestClient) -> None:
    r = served.post("/api/checkpoints/training-ckpt/load", json={"strict": True})
    assert r.status_code == 422 and "model" in r.json()["detail"]
    r = served.post("/api/checkpoints/training-ckpt/load", json={"model": "twolayernet", "strict": "maybe"})
    assert r.status_code == 422


def test_diff_endpoints(served: TestClient) -> None:
    r = served.get("/api/checkpoints/training-ckpt/diff", params={"other": "two_layer-safetensors"})
    body = r.json()
    assert r.status_code == 200 and body["unchanged"] == 4 and body["added"] == [] and body["removed"] == []
    r = served.get("/api/checkpoints/training-ckpt/diff", params={"model": "twolayernet"})
    body = r.json()
    assert len(body["common"]) == 4 and all(row["max_abs"] > 0 for row in body["common"])  # fresh init differs
    r = served.get("/api/checkpoints/training-ckpt/diff")
    assert r.status_code == 422 and "exactly one" in r.json()["detail"]
    r = served.get("/api/checkpoints/training-ckpt/diff", params={"other": "nope"})
    assert r.status_code == 404


def test_upload_opens_and_is_never_trusted(served: TestClient, zoo: dict[str, Path]) -> None:
    with zoo["state_dict"].open("rb") as f:
        r = served.post("/api/checkpoints/upload", headers=W, files={"file": ("mine.pth", f, "application/octet-stream")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["uploaded"] and body["name"] == "mine.pth" and len(body["tensors"]) == 4
    with zoo["whole_model"].open("rb") as f:
        r = served.post("/api/checkpoints/upload", headers=W, files={"file": ("whole_model.pt", f)})
    assert r.status_code == 422 and "--trust-pickle" in r.json()["detail"]


@pytest.mark.parametrize(
    ("name", "status", "fragment"),
    [
        ("truncated", 422, "truncated or corrupt"),
        ("random", 422, "is not a checkpoint"),
        ("empty", 422, "is empty (0 bytes)"),
        ("truncated_safetensors", 422, "lying header"),
        ("malicious", 422, "posix.system"),
        ("malicious_pickle", 422, "posix.system"),
    ],
)
def test_upload_bad_files_are_precise(served: TestClient, zoo: dict[str, Path], name: str, status: int, fragment: str) -> None:
    r = served.post("/api/checkpoints/upload", headers=W, files={"file": (zoo[name].name, zoo[name].read_bytes())})
    assert r.status_code == status and fragment in r.json()["detail"]
    assert not zoo["marker"].exists()
    assert served.get("/api/checkpoints").status_code == 200  # still serving


def test_upload_lying_header(served: TestClient, tmp_path: Path) -> None:
    path = lying_safetensors(tmp_path / "lie.safetensors", claim_end=4096)
    r = served.post("/api/checkpoints/upload", headers=W, files={"file": (path.name, path.read_bytes())})
    assert r.status_code == 422 and r.json()["tensor"] == "w" and r.json()["rule"] == "offsets"


def test_upload_size_limit_is_413(served: TestClient) -> None:
    r = served.post("/api/checkpoints/upload", headers=W, files={"file": ("big.pt", b"\0" * (1024 * 1024 + 10))})
    assert r.status_code == 413 and "--max-upload-mb" in r.json()["detail"]
    r = served.post("/api/checkpoints/upload?filename=big.pt", headers=W, content=b"\0" * (1024 * 1024 + 10))
    assert r.status_code == 413


def test_streamed_upload_is_cut_off_at_the_limit(served: TestClient, zoo: dict[str, Path]) -> None:
    def body() -> object:  # no Content-Length: chunked, so only counting bytes can stop it
        for _ in range(64):
            yield b"\0" * 65536

    r = served.post("/api/checkpoints/upload?filename=huge.pt", headers=W, content=body())
    assert r.status_code == 413
    assert not list(served.app.state.upload_dir.iterdir())  # type: ignore[attr-defined]  # nothing left behind
    r = served.post("/api/checkpoints/upload?filename=mine.pth", headers=W, content=zoo["state_dict"].read_bytes())
    assert r.status_code == 201 and r.json()["name"] == "mine.pth"


def test_upload_without_file_is_422(served: TestClient) -> None:
    r = served.post("/api/checkpoints/upload", headers=W)
    assert r.status_code == 422 and "upload is empty (0 bytes)" in r.json()["detail"]
    r = served.post("/api/checkpoints/upload", headers=W, files={"other": ("x.pt", b"123")})
    assert r.status_code == 422 and "no `file` field" in r.json()["detail"]


def test_open_from_data_dir_and_escapes(served: TestClient) -> None:
    r = served.post("/api/checkpoints/open", json={"path": "sub/two_layer.pth"})
    assert r.status_code == 201 and r.json()["name"] == "sub/two_layer.pth"
    for bad, status in [("../zoo/two_layer.pth", 422), ("sub/../../x.pth", 422), ("escape.pth", 422), ("/etc/passwd", 422), ("missing.pth", 404), ("sub", 422)]:
        r = served.post("/api/checkpoints/open", json={"path": bad})
        assert r.status_code == status, (bad, r.text)


def test_open_without_data_dir(make_client: MakeClient) -> None:
    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"]))
    r = client.post("/api/checkpoints/open", json={"path": "x.pth"})
    assert r.status_code == 422 and "--data-dir" in r.json()["detail"]


def test_trust_pickle_only_for_that_exact_file(make_client: MakeClient, zoo: dict[str, Path]) -> None:
    client = make_client(
        Settings(
            specs=["torchscope.examples:TwoLayerNet"],
            checkpoints=[zoo["whole_model"], zoo["malicious"]],
            trust_pickle=[zoo["whole_model"]],
        )
    )
    body = client.get("/api/checkpoints/overview").json()
    assert [c["id"] for c in body["checkpoints"]] == ["whole_model-pt"]
    assert body["checkpoints"][0]["trusted"]
    assert "posix.system" in body["failures"][0]["detail"]
    assert not zoo["marker"].exists()


def test_pages_render_and_errors_are_readable(served: TestClient) -> None:
    r = served.get("/checkpoints")
    assert r.status_code == 200 and "training.ckpt" in r.text and "posix.system" in r.text
    r = served.get("/checkpoints/training-ckpt")
    assert r.status_code == 200 and "lr" in r.text and "epoch" in r.text
    r = served.get("/checkpoints/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "no checkpoint with id" in r.text and "Traceback" not in r.text


def test_delete_closes(served: TestClient) -> None:
    assert served.delete("/api/checkpoints/two_layer-safetensors", headers=W).status_code == 204
    assert served.get("/api/checkpoints/two_layer-safetensors").status_code == 404


def test_non_finite_values_stay_valid_json(make_client: MakeClient, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    w = torch.zeros(4)
    torch.save({"model": {"w": w}, "loss": float("nan"), "best": float("inf")}, a)
    torch.save({"model": {"w": torch.tensor([float("nan"), 1.0, 0.0, 0.0])}}, b)
    client = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"], checkpoints=[a, b]))
    body = client.get("/api/checkpoints/a-pt").json()
    assert body["other"] == {"loss": "nan", "best": "inf"}
    r = client.get("/api/checkpoints/a-pt/diff", params={"other": "b-pt"})
    assert r.status_code == 200
    row = r.json()["common"][0]
    assert row["key"] == "w" and row["max_abs"] is None and row["rel_l2"] is None and row["cosine"] is None


def test_uploads_share_a_disk_quota_and_show_the_users_name(make_client: MakeClient, tmp_path: Path) -> None:
    """Issue 9: kept uploads may use --upload-quota-mb together (413 naming it); answers name the user's file."""
    c = make_client(Settings(specs=["torchscope.examples:TwoLayerNet"], max_upload_mb=1, upload_quota_mb=1))
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(150_000)}, path)  # 600 KB
    first = c.post("/api/checkpoints/upload?filename=first.pt", content=path.read_bytes(), headers=W)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["path"] == "first.pt" and body["files"] == ["first.pt"] and "torchscope-uploads" not in first.text
    second = c.post("/api/checkpoints/upload?filename=second.pt", content=path.read_bytes(), headers=W)
    assert second.status_code == 413 and "1 MB upload quota" in second.json()["detail"] and second.json()["rule"] == "upload_quota"
    assert c.delete(f"/api/checkpoints/{body['id']}", headers=W).status_code == 204
    assert c.post("/api/checkpoints/upload?filename=second.pt", content=path.read_bytes(), headers=W).status_code == 201
    bad = c.post("/api/checkpoints/upload?filename=my%20model.safetensors", content=b"\x10\0\0\0\0\0\0\0{}", headers=W)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("my model.safetensors")
