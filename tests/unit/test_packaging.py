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


def _module_level_imports() -> dict[str, set[str]]:
    """torchscope module -> the torchscope modules it imports at module level (not inside functions)."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in (ROOT / "app").rglob("*.py"):
        parts = path.relative_to(ROOT / "app").with_suffix("").parts
        name = ".".join(("torchscope", *(parts[:-1] if parts[-1] == "__init__" else parts)))
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If):  # TYPE_CHECKING blocks run only under mypy
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torchscope"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("torchscope"))
        graph[name] = deps
    return {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its children is the one allowed back edge.
    graph = _module_level_imports()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if node.startswith(dep + "."):
                continue  # a child importing (through) its package
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, dep]))
            if dep not in state:
                visit(dep, [*stack, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
