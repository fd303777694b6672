"""The real ``torchscope serve`` command, as a subprocess: errors are one line and exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_help_explains_every_option() -> None:
    out = run_cli("serve", "--help").stdout
    for needle in ["SPEC", "--kwargs", "--meta", "--host", "--port", "127.0.0.1", "--checkpoint",
                   "--trust-pickle", "--data-dir", "path/to/file.py:attr", "callable returning"]:
        assert needle in out, needle
    assert "serve" in run_cli("--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module:net"], "no_such_module:net: no module named 'no_such_module'"),
        (["missing/models.py:Net"], "file not found: missing/models.py"),
        (["app.examples:Nope"], "app.examples has no attribute 'Nope'"),
        (["tests.fixtures.models:NOT_CALLABLE"], "is a int, not an nn.Module"),
        (["tests.fixtures.models:build_not_a_module"], "returned a dict, not an nn.Module"),
        (["tests.fixtures.models:build_raises", "--kwargs", '{"depth": 3}'],
         "build_raises(depth=3) raised ValueError: depth 3 is not supported"),
        (["app.examples:TwoLayerNet", "--kwargs", "{nope"], "--kwargs is not valid JSON"),
        (["app.examples:TwoLayerNet", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (["app.examples:TwoLayerNet", "--port", "99999"], "port must be 0-65535"),
        (["app.examples:TwoLayerNet", "--data-dir", "/no/such/dir"], "not a directory"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args: list[str], message: str) -> None:
    result = run_cli("serve", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1, result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run_cli("serve", "tests.fixtures.models:build_raises", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_serves_for_real_on_loopback_by_default() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "app.examples:TwoLayerNet", "tests.fixtures.models:noisy_factory",
         "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            m = re.search(r"serving 2 model\(s\) on (http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
            if proc.poll() is not None:
                break
        assert url, "".join(lines)
        assert any("TwoLayerNet: TwoLayerNet, 262 parameters" in line for line in lines)
        for _ in range(50):  # uvicorn starts right after the banner
            try:
                with urllib.request.urlopen(url + "/api/models", timeout=5) as r:
                    models = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert [m["id"] for m in models] == ["twolayernet", "noisy_factory"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_busy_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("serve", "app.examples:TwoLayerNet", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
