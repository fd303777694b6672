"""torchscope: a local web dashboard for looking inside PyTorch networks.

``torchscope.show(model)`` serves live models from Python (a notebook, a script);
``torchscope serve SPEC`` does it from the shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# templates/ and static/ live at the top of the repository (the project layout);
# the package is installed in editable mode, so they are found next to it.
ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

if TYPE_CHECKING:
    from torchscope.api import Shown, serve, show, stop

__all__ = ["Shown", "__version__", "serve", "show", "stop"]

# `import torchscope` stays light (no torch, fastapi or uvicorn): `torchscope --version` and
# `--help` are instant, and importing the package costs nothing until show()/serve() is used.
_API = frozenset({"Shown", "serve", "show", "stop"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from torchscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'torchscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
