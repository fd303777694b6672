"""Issue 9: a corpus of hostile files through all four entry points (upload, --data-dir open,
--checkpoint at startup, ``torchscope inspect``). Each is a 4xx with its reason (or one line and
exit 2), the server keeps serving, its memory stays bounded, and nothing in the files runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import LOCAL
from tests.fixtures.hostile import Hostile, write_corpus
from torchscope.main import create_app
from torchscope.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
W = {"X-Torchscope": "1", "Content-Type": "application/octet-stream"}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Hostile], Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "PWNED"
    return write_corpus(root / "files", marker), root / "files", marker


@pytest.fixture(scope="module")
def server(corpus: tuple[list[Hostile], Path, Path]) -> Iterator[TestClient]:
    """One server started with every hostile file as --checkpoint and the corpus as --data-dir."""
    items, files, _ = corpus
    settings = Settings(
        specs=["torchscope.examples:TwoLayerNet"], checkpoints=[h.path for h in items], data_dir=files, max_upload_mb=64
    )
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        yield c


def check_refusal(h: Hostile, status: int, detail: str, files: Path) -> None:
    assert 400 <= status < 500, (h.name, status, detail)
    assert h.expect in detail, (h.name, detail)
    assert str(files) not in detail and "/tmp" not in detail, (h.name, detail)  # no server paths
    assert "\n" not in detail


def test_startup_records_every_hostile_checkpoint_and_serves(server: TestClient, corpus: tuple[list[Hostile], Path, Path]) -> None:
    items, files, marker = corpus
    overview = server.get("/api/checkpoints/overview").json()
    assert overview["checkpoints"] == []
    failures = {f["path"]: f for f in overview["failures"]}
    for h in items:
        check_refusal(h, failures[str(h.path)]["status"], failures[str(h.path)]["detail"], files)
    assert not marker.exists()


def test_uploads_and_data_dir_opens_are_refused_within_budgets(server: TestClient, corpus: tuple[list[Hostile], Path, Path]) -> None:
    items, files, marker = corpus
    before = rss_mb()
    for h in items:
        with h.path.open("rb") as f:
            r = server.post(f"/api/checkpoints/upload?filename={h.path.name}", content=f, headers=W)
        if h.kind == "index":  # shards cannot come along with an upload
            assert r.status_code == 422 and "sharded-safetensors index" in r.json()["detail"], r.text
        else:
            check_refusal(h, r.status_code, r.json()["detail"], files)
        assert "torchscope-uploads" not in r.text
        rel = h.path.relative_to(files).as_posix()
        r = server.post("/api/checkpoints/open", json={"path": rel})
        check_refusal(h, r.status_code, r.json()["detail"], files)
        assert server.get("/api/checkpoints").json() == []  # alive, and nothing half-opened was kept
    growth = rss_mb() - before
    assert growth < 300, f"the server grew by {growth:.0f} MB"
    assert not marker.exists()
    assert not list(server.app.state.upload_dir.iterdir())  # type: ignore[attr-defined]  # refused uploads are deleted


def test_data_dir_paths_that_break_resolution_are_422s(server: TestClient, corpus: tuple[list[Hostile], Path, Path]) -> None:
    _, files, _ = corpus
    (files / "loop.pth").symlink_to(files / "loop.pth")
    (files / "dangling.pth").symlink_to(files / "nowhere.pth")
    try:
        for path in ["loop.pth", "a\u0000b.pth", "x" * 300 + ".pth", "sub/" + "y" * 300, "\ud800.pth"]:
            body = json.dumps({"path": path})  # ASCII escapes: a lone surrogate survives the trip
            r = server.post("/api/checkpoints/open", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (path[:20], r.text)
        assert server.post("/api/checkpoints/open", json={"path": "dangling.pth"}).status_code == 404
        listing = server.get("/api/checkpoints/overview")
        assert listing.status_code == 200
        names = [f["path"] for f in listing.json()["files"]]
        assert "loop.pth" not in names and "dangling.pth" not in names and "deep_tuple.pt" in names
        assert server.get("/checkpoints").status_code == 200
    finally:
        (files / "loop.pth").unlink()
        (files / "dangling.pth").unlink()


DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from torchscope.cli import main

    if __name__ == "__main__":
        out = []
        for path in sys.argv[1:]:
            err, std = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
                code = main(["inspect", path])
            out.append({"path": path, "code": code, "stderr": err.getvalue()})
        print(json.dumps(out))
    """
)


def test_inspect_command_prints_one_line_and_exits_2(corpus: tuple[list[Hostile], Path, Path], tmp_path: Path) -> None:
    items, _, marker = corpus
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), *[str(h.path) for h in items]],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {r["path"]: r for r in json.loads(proc.stdout.splitlines()[-1])}
    for h in items:
        r = results[str(h.path)]
        lines = r["stderr"].strip().splitlines()
        assert r["code"] == 2 and len(lines) == 1 and lines[0].startswith("torchscope: error: "), (h.name, r)
        assert h.expect in lines[0], (h.name, lines[0])
    assert not marker.exists()
