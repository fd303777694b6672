"""Issue 9, the real ``torchscope serve``: a token off loopback (printed like Jupyter's), --no-token
only when asked, and hostile --checkpoint files that never abort startup."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cli.test_serve_cli import run_cli
from tests.fixtures.hostile import _deep_tuple_key_pickle, _torch_zip

ROOT = Path(__file__).resolve().parents[2]
SPEC = "torchscope.examples:TwoLayerNet"


@contextmanager
def serving(*args: str) -> Iterator[tuple[str, list[str]]]:
    """The real command on a free port: yields the URL it printed and every line so far."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchscope", "serve", SPEC, "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            m = re.search(r"serving 1 model\(s\) on (\S+)", line)
            url = m.group(1) if m else None
        assert url is not None, "".join(lines)
        yield url, lines
    finally:
        proc.terminate()
        lines.extend(proc.communicate(timeout=20)[1].splitlines(keepends=True))


def status(url: str, headers: dict[str, str] | None = None) -> int:
    deadline = time.monotonic() + 60  # the lifespan opens --checkpoint files before it listens
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


def test_a_non_loopback_bind_prints_a_token_url_and_requires_it() -> None:
    with serving("--host", "0.0.0.0") as (url, _):
        m = re.fullmatch(r"http://0\.0\.0\.0:(\d+)/\?token=([0-9a-f]{48})", url)
        assert m, url
        port, token = m.groups()
        base = f"http://127.0.0.1:{port}"
        assert status(f"{base}/api/models") == 401
        assert status(f"{base}/api/models", {"Authorization": f"Bearer {token}"}) == 200
        assert status(f"{base}/api/models?token={token}") == 200
        assert status(f"{base}/api/models", {"Authorization": "Bearer wrong"}) == 401


def test_no_token_must_be_explicit_and_warns() -> None:
    with serving("--host", "0.0.0.0", "--no-token") as (url, lines):
        assert "token" not in url and any("--no-token" in line and "WARNING" in line for line in lines)
        port = url.rsplit(":", 1)[1].strip("/")
        assert status(f"http://127.0.0.1:{port}/api/models") == 200
    r = run_cli("serve", SPEC, "--no-token", "--token", "x")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "contradict" in r.stderr


def test_loopback_needs_no_token_and_hostile_checkpoints_do_not_abort_startup(tmp_path: Path) -> None:
    bad = _torch_zip(tmp_path / "deep.pt", _deep_tuple_key_pickle())
    with serving("--checkpoint", str(bad)) as (url, lines):
        assert "token" not in url
        assert status(f"{url}api/models") == 200
        assert status(f"{url}api/models", {"Host": "evil.example"}) == 400
        with urllib.request.urlopen(f"{url}api/checkpoints/overview", timeout=10) as r:
            failures = json.load(r)["failures"]
        assert [f["status"] for f in failures] == [422] and "levels deep" in failures[0]["detail"]
    said = "".join(lines)
    assert "Traceback" not in said and "deep.pt: the pickle nests" in said
