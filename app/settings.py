"""Server settings: what the CLI parsed, what tests construct directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Settings:
    """Everything ``create_app`` needs; no module globals anywhere."""

    # SPECs to serve; empty means the built-in examples (torchscope.examples.EXAMPLES).
    specs: list[str] = field(default_factory=list)
    # --kwargs: one dict for every SPEC, or one per SPEC in order.
    kwargs: list[dict[str, Any]] = field(default_factory=list)
    meta: bool = False
    # --inputs: example inputs (JSON or a callable's SPEC), one for every SPEC or one per SPEC.
    inputs: list[str] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    # Files whose pickles the user explicitly trusts (resolved paths); nothing else is unpickled freely.
    trust_pickle: list[Path] = field(default_factory=list)
    # Browser-opened files may come only from under this directory.
    data_dir: Path | None = None
    max_upload_mb: int = 2048
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False

    def kwargs_for(self, index: int) -> dict[str, Any]:
        if not self.kwargs:
            return {}
        if len(self.kwargs) == 1:
            return self.kwargs[0]
        return self.kwargs[index]
