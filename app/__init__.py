"""torchscope: a local web dashboard for looking inside PyTorch networks."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# templates/ and static/ live at the top of the repository (the project layout);
# the package is installed in editable mode, so they are found next to it.
ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
