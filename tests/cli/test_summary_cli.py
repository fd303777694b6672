"""``torchscope summary SPEC``: the per-call table in a terminal; errors are one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchscope.cli import main

ROOT = Path(__file__).resolve().parents[2]


def summary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchscope", "summary", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_help_explains_inputs_and_exit_status() -> None:
    out = summary("--help").stdout
    for needle in ["SPEC", "--inputs", "--depth", "--kwargs", "--meta", "--markdown", "fake tensors", "make_inputs", "exit status"]:
        assert needle in out, needle


def test_prints_the_table_with_shapes_flops_and_totals() -> None:
    r = summary("torchscope.examples:SmallCNN", "--inputs", "[[2, 3, 32, 32]]", "--depth", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "SmallCNN: forward on fake tensors (cpu kernels), train mode"
    assert lines[1] == "inputs (cli): [2, 3, 32, 32]  [--inputs]"
    root = next(line for line in lines if line.startswith("(model): SmallCNN"))
    assert root.split()[2:7] == ["0", "[2,", "3,", "32,", "32]"] and "[2, 10]" in root
    assert any(line.startswith("  features: Sequential") and "[2, 64, 1, 1]" in line for line in lines)
    assert not any("Conv2d" in line for line in lines)  # deeper than --depth 1
    assert any(line.startswith("Total FLOPs") for line in lines)
    assert any("calls deeper than --depth 1 not shown" in line for line in lines)


def test_a_failing_forward_is_one_line_and_exit_2() -> None:
    r = summary("tests.fixtures.models:ShapeBug", "--inputs", "[[1, 20, 40]]")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        "torchscope: error: forward failed at `fc1` (Linear, call 0) with inputs ([1, 800]): "
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x800 and 784x10)"
    )


def test_serve_refuses_unfit_inputs_before_loading() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "torchscope", "serve", "torchscope.examples:TwoLayerNet", "--inputs", '{"args": [{"shape": [-1]}]}'],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "inputs.args[0].shape[0]: sizes cannot be negative, got -1" in r.stderr
    assert "loading" not in r.stderr


# In-process (same code path as the console script, faster): the output options and the other errors.


def test_markdown_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "tests.fixtures.models:CalledTwice", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.count("`shared`") == 2 and md.count("`loop`") == 3
    assert main(["summary", "tests.fixtures.models:tiny_gpt2", "--meta", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["source"] == "inferred" and d["device"] == "cpu" and d["calls"][0]["class"] == "GPT2LMHeadModel"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests.fixtures.models:KwargsOnly"], "no example inputs for KwargsOnly: KwargsOnly.forward takes x, mask"),
        (["tests.fixtures.models:KwargsOnly", "--inputs", "{nope"], "--inputs '{nope': not valid JSON"),
        (["tests.fixtures.models:KwargsOnly", "--inputs", "tests.fixtures.models:make_inputs_raises"],
         "make_inputs_raises() raised RuntimeError: no data here"),
        (["no_such_module:net"], "no module named 'no_such_module'"),
        (["torchscope.examples:MLP", "--kwargs", '{"d_in": 3}', "--inputs", "[[1, 4]]"], "forward failed at `fc1`"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("torchscope: error: ") and message in err


def test_the_command_module_does_not_import_torch() -> None:
    code = "import sys, torchscope.cli_summary; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
