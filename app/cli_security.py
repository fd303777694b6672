"""``torchscope serve``'s access options (issue 9): --allow-host, --token / --no-token, upload quota.

Kept out of cli.py so the serve command reads as a list of steps. Binding beyond loopback
asks for a token, generated and printed like Jupyter's, unless ``--no-token`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from torchscope.web.security import generate_token, is_loopback

TOKEN_ENV = "TORCHSCOPE_TOKEN"


def add_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header is NAME (a tunnel or reverse proxy's name); repeatable. "
        "Other names are refused, so a web page cannot reach the server by re-pointing its DNS name "
        "(DNS rebinding). '*' allows any name (not recommended).",
    )
    serve.add_argument(
        "--token",
        default=None,
        metavar="TOKEN",
        help=f"require this token on every request (default: a random one when --host is not loopback; "
        f"also read from ${TOKEN_ENV}). Browsers get it once from the printed ?token= URL, API clients "
        "send 'Authorization: Bearer TOKEN'.",
    )
    serve.add_argument(
        "--no-token",
        action="store_true",
        help="DANGEROUS with a non-loopback --host: serve without a token, so anyone who can reach the "
        "port can read and change the served weights",
    )
    serve.add_argument(
        "--upload-quota-mb",
        type=int,
        default=8192,
        metavar="MB",
        help="disk space all kept uploads may use together (default: 8192); closing an uploaded checkpoint frees it",
    )


@dataclass(frozen=True)
class Access:
    token: str | None
    warnings: list[str]


def access(args: argparse.Namespace) -> Access:
    """The token to require (or None) and what to warn about, from --host / --token / --no-token."""
    host: str = args.host
    token: str | None = args.token or os.environ.get(TOKEN_ENV) or None
    warnings: list[str] = []
    if args.no_token:
        if token:
            raise ValueError("--no-token and --token contradict each other")
        if not is_loopback(host):
            warnings.append(
                f"WARNING: listening on {host} with --no-token: anyone who can reach this port can read and "
                "change the served weights."
            )
        return Access(None, warnings)
    if token is None and not is_loopback(host):
        token = generate_token()
    return Access(token, warnings)


def browse_url(host: str, port: int, token: str | None) -> str:
    """The URL to print: with ``?token=`` when there is one (like Jupyter's)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
