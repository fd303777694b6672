"""The import package is ``torchscope`` (source folder ``app/``); nothing is installed as ``app``."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import torchscope

ROOT = Path(__file__).resolve().parents[2]


def test_torchscope_is_the_app_folder() -> None:
    assert Path(torchscope.__file__).resolve() == ROOT / "app" / "__init__.py"


def test_every_package_folder_is_listed_in_pyproject() -> None:
    # A subpackage missing from [tool.setuptools] packages works in an editable install and is
    # silently left out of a wheel: list them all.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"torchscope": "app"}
    found = {
        ".".join(("torchscope", *init.parent.relative_to(ROOT / "app").parts))
        for init in (ROOT / "app").rglob("__init__.py")
    }
    assert found == set(config["packages"])


def test_no_app_package_is_importable_outside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import importlib.util, torchscope; print(importlib.util.find_spec('app'), torchscope.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "torchscope"]


def test_python_dash_m_torchscope_is_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", "torchscope", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"torchscope {torchscope.__version__}"
