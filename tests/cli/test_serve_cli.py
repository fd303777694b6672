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
        [sys.executable, "-m", "torchscope", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def start_server(args: list[str], cwd: Path, env: dict[str, str], expect: int) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start the real command on a free port; returns it, its URL and the lines it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchscope", "serve", *args, "--port", "0"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    url = None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline and url is None:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        lines.append(line)
        m = re.search(rf"serving {expect} model\(s\) on (http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
        if proc.poll() is not None:
            break
    if url is None:
        proc.terminate()
        raise AssertionError("".join(lines))
    return proc, url, lines


def get_json(url: str) -> object:
    for _ in range(50):  # uvicorn starts right after the banner
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


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
        (["torchscope.examples:Nope"], "torchscope.examples has no attribute 'Nope'"),
        (["tests.fixtures.models:NOT_CALLABLE"], "is an int, not an nn.Module"),
        (["tests.fixtures.models:build_not_a_module"], "returned a dict, not an nn.Module"),
        (["tests.fixtures.models:build_raises", "--kwargs", '{"depth": 3}'],
         "build_raises(depth=3) raised ValueError: depth 3 is not supported"),
        (["torchscope.examples:TwoLayerNet", "--kwargs", "{nope"], "--kwargs is not valid JSON"),
        (["torchscope.examples:TwoLayerNet", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (["torchscope.examples:TwoLayerNet", "--port", "99999"], "port must be 0-65535"),
        (["torchscope.examples:TwoLayerNet", "--data-dir", "/no/such/dir"], "not a directory"),
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
    proc, url, lines = start_server(
        ["torchscope.examples:TwoLayerNet", "tests.fixtures.models:noisy_factory"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, expect=2,
    )
    try:
        assert any("TwoLayerNet: TwoLayerNet, 262 parameters" in line for line in lines)
        models = get_json(url + "/api/models")
        assert [m["id"] for m in models] == ["twolayernet", "noisy_factory"]  # type: ignore[index, union-attr]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


USER_APP_MODELS = """\
from torch import nn


class Net(nn.Module):
    \"\"\"The user's own app.models.Net.\"\"\"

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
"""


def test_a_users_own_app_package_can_be_served(tmp_path: Path) -> None:
    # FastAPI projects very often have an `app` package: torchscope must not shadow it (issue 8).
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "models.py").write_text(USER_APP_MODELS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc, url, _ = start_server(["app.models:Net"], cwd=tmp_path, env=env, expect=1)
    try:
        models = get_json(url + "/api/models")
        assert models == [  # type: ignore[comparison-overlap]
            {"id": "net", "name": "Net", "class": "Net", "spec": "app.models:Net", "meta": False,
             "doc": "The user's own app.models.Net."}
        ]
        summary = get_json(url + "/api/models/net")
        assert summary["parameters"]["total"] == 3 * 2 + 2  # type: ignore[index, call-overload]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_busy_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("serve", "torchscope.examples:TwoLayerNet", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "loading" not in result.stderr  # checked before any model is built (issue 8)


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["serve", "--help"], ["inspect", "--help"]])
def test_version_and_help_do_not_import_torch(argv: list[str]) -> None:
    # Importing torch takes seconds; asking for --help must not (issue 8).
    code = (
        "import sys\nfrom torchscope.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr
