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
    # Issue 9 (web/security.py): Host names besides the bound address and loopback (tunnels,
    # proxies; "*" = any), the token asked of every request (None = none: loopback only, or
    # --no-token), and the largest request body other than an upload.
    allow_hosts: list[str] = field(default_factory=list)
    token: str | None = None
    max_body_kb: int = 4096
    # Kept uploads together may use at most this much disk (413 past it).
    upload_quota_mb: int = 8192
    # Untrusted files are opened in a worker process within these budgets (inspect/checkpoints/isolation.py).
    open_timeout_s: float = 60.0
    open_memory_mb: int = 1024

    def kwargs_for(self, index: int) -> dict[str, Any]:
        if not self.kwargs:
            return {}
        if len(self.kwargs) == 1:
            return self.kwargs[0]
        return self.kwargs[index]
