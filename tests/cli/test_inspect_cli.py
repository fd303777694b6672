"""``torchscope inspect FILE``: run as a real subprocess, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.fixtures.checkpoints import write_zoo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_zoo(tmp_path_factory.mktemp("zoo"))


def inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchscope.cli", "inspect", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_table_lists_keys_shapes_dtypes_optimizer_and_other(zoo: dict[str, Path]) -> None:
    r = inspect(str(zoo["training"]))
    assert r.returncode == 0, r.stderr
    raw = torch.load(zoo["training"], weights_only=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("training.ckpt  [torch]  ")
    for key, t in raw["model"].items():
        row = next(line for line in lines if line.startswith(f"model/{key} "))
        assert row.split()[1:3] == ["[" + ", ".join(str(s) for s in t.shape) + "]", "float32"] or (
            " ".join(row.split()[1:]).startswith("[" + ", ".join(str(s) for s in t.shape) + "]")
        )
    assert any(line.startswith("optimizer optimizer: 4 parameters in 1 group(s)") for line in lines)
    assert any("lr=0.001" in line and "weight_decay=0.05" in line for line in lines)
    assert "  per-parameter state: exp_avg, exp_avg_sq, step" in lines
    assert "  epoch = 7" in lines


def test_json_matches_the_api_shape(zoo: dict[str, Path]) -> None:
    r = inspect(str(zoo["sharded"]), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["format"] == "safetensors-sharded"
    sd = torch.load(zoo["state_dict"], weights_only=True)
    assert {t["key"]: t["shape"] for t in data["tensors"]} == {k: list(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("whole_model", "torchscope.examples.TwoLayerNet"),
        ("malicious", "posix.system"),
        ("malicious_pickle", "posix.system"),
        ("truncated", "truncated or corrupt"),
        ("random", "is not a checkpoint"),
        ("empty", "is empty (0 bytes)"),
        ("truncated_safetensors", "lying header"),
    ],
)
def test_refused_and_broken_files_exit_2_with_one_line(
    zoo: dict[str, Path], name: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process through the same main() the console script calls (a subprocess per case costs ~2 s of torch import).
    from torchscope.cli import main

    assert main(["inspect", str(zoo[name])]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("torchscope: error: ")
    assert fragment in err and "Traceback" not in err
    assert not zoo["marker"].exists()


def test_refusal_as_a_real_process(zoo: dict[str, Path]) -> None:
    r = inspect(str(zoo["malicious"]))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "posix.system" in r.stderr
    assert not zoo["marker"].exists()


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from torchscope.cli import main

    assert main(["inspect", str(tmp_path / "nope.pt")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_trust_pickle_opens_that_file_only(zoo: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from torchscope.cli import main

    assert main(["inspect", str(zoo["whole_model"]), "--trust-pickle"]) == 0
    out = capsys.readouterr().out
    assert "fc1.weight" in out and "pickled nn.Module(s): torchscope.examples.TwoLayerNet" in out
    # --trust-pickle names the inspected file itself; trusting one file never trusts another
    # (unit and API tests check the malicious pickle stays refused while other files are trusted).


def test_inspect_help_warns(capsys: pytest.CaptureFixture[str]) -> None:
    from torchscope.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "--help"])
    assert exit_.value.code == 0 and "RUNS ANY CODE" in capsys.readouterr().out


def test_a_refused_pickle_names_this_commands_own_flag(zoo: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # the server's hint is "--trust-pickle FILE"; inspect's flag takes no FILE (issue 8)
    from torchscope.cli import main

    assert main(["inspect", str(zoo["whole_model"])]) == 2
    err = capsys.readouterr().err
    assert f"torchscope inspect {zoo['whole_model']} --trust-pickle" in err
    assert "--trust-pickle FILE" not in err
