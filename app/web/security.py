"""Only the dashboard's own origin talks to the server: a pure ASGI middleware (issue 9).

The server can read and change a model's weights, so every request passes, in order:

1. **Host**: the ``Host`` header must name this server (the bound address, ``localhost``,
   ``127.0.0.1``, ``[::1]``, or a name given with ``--allow-host``). A page on another site
   that re-points its DNS name at 127.0.0.1 (DNS rebinding) still sends its own name: 400.
2. **Token** (when one is set, always for non-loopback binds): ``?token=`` once (then an
   HttpOnly, SameSite=Strict cookie), ``Authorization: Bearer TOKEN`` or ``X-Torchscope-Token``.
3. **Origin**: a request whose ``Origin`` is not this server, or (without ``Origin``) whose
   ``Sec-Fetch-Site`` says another site sent it, is refused (403); navigations to pages are
   fine, anything else from another site is not.
4. **Writes need what a cross-site form cannot send**: every POST/PUT/PATCH/DELETE carries a
   JSON body (or another non-form content type, such as a raw upload's
   ``application/octet-stream``) or the ``X-Torchscope`` header. Forms and "simple" fetches can
   only send url-encoded, multipart or text/plain bodies, without custom headers.
5. **Body budget**: request bodies (except the streamed upload, which has its own limit) are
   capped before they are read (Content-Length) and while they stream; JSON bodies are checked
   for nesting depth and integer length off the event loop before the app parses them.

Pure ASGI (no BaseHTTPMiddleware): nothing is buffered except bodies already known to be small.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from torchscope.inspect.budgets import JsonBudgetError, check_json_value

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CLIENT_HEADER = "x-torchscope"  # what the pages' JS sends on every request
TOKEN_HEADER = "x-torchscope-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The only request bodies a cross-site <form> or a no-preflight fetch can send.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
# Parsing happens on the event loop (FastAPI): bodies are small and flat, so the loop never stalls.
MAX_BODY_ITEMS = 200_000
INLINE_JSON_CHECK = 64 * 1024  # smaller JSON bodies are checked on the loop (microseconds)


def generate_token() -> str:
    return secrets.token_hex(24)


def is_loopback(host: str) -> bool:
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def _host_name(value: str) -> str:
    """``Host`` header -> lower-case name without port (``[::1]:8000`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass
class SecurityConfig:
    """What the middleware enforces; built from Settings by :func:`config_from_settings`."""

    bound_host: str = "127.0.0.1"
    allow_hosts: list[str] = field(default_factory=list)  # extra names; "*" allows any Host
    token: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_json_depth: int = 64
    streamed_paths: tuple[str, ...] = ("/api/checkpoints/upload",)  # bodies with their own limit

    def __post_init__(self) -> None:
        names = {*LOOPBACK_NAMES, _host_name(self.bound_host)}
        names.update(_host_name(h) for h in self.allow_hosts if h != "*")
        self.any_host = "*" in self.allow_hosts
        # Bound to every interface: the machine is reached by one of its addresses or names.
        # An IP literal cannot be DNS-rebound, so any IP is accepted; names must be the machine's.
        self.any_ip = is_wildcard(self.bound_host)
        if not is_loopback(self.bound_host):
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    names.add(name.lower())
        self.host_names = frozenset(n for n in names if n)

    def host_allowed(self, host_header: str) -> bool:
        if self.any_host:
            return True
        name = _host_name(host_header)
        if not name:
            return False
        return name in self.host_names or (self.any_ip and _is_ip(name))


def config_from_settings(settings: Any) -> SecurityConfig:
    return SecurityConfig(
        bound_host=settings.host,
        allow_hosts=list(settings.allow_hosts),
        token=settings.token,
        max_body_bytes=settings.max_body_kb * 1024,
    )


# --------------------------------------------------------------------------- responses


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        out[k.decode("latin-1").lower()] = v.decode("latin-1")
    return out


def _wants_html(scope: Scope, headers: dict[str, str]) -> bool:
    path: str = scope.get("path", "")
    return not path.startswith(("/api/", "/static/", "/vendor/")) and "text/html" in headers.get("accept", "")


async def _send_json(send: Send, status: int, detail: str, extra_headers: Iterable[tuple[bytes, bytes]] = (), **extra: Any) -> None:
    body = json.dumps({"detail": detail, **extra}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>token needed · torchscope</title>
<style>body{{font:15px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
input{{font:inherit;width:24rem;padding:.3rem}}</style></head><body>
<h1>torchscope: token needed</h1>
<p>This server was started on a network address, so it asks for the token it printed when it
started (open the link printed there, <code>http://…/?token=…</code>).</p>
<form method="get" action="{path}"><input name="token" type="password" autocomplete="off"
aria-label="token" autofocus> <button>Open</button></form>{note}</body></html>"""


async def _send_login(send: Send, path: str, wrong: bool) -> None:
    note = "<p role='alert'>That token is not the one this server printed.</p>" if wrong else ""
    body = _LOGIN_PAGE.format(path=path.replace('"', "%22").replace("<", "%3C"), note=note).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the middleware


class SecurityMiddleware:
    """Host, token, origin, write-header and body-budget checks (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self.app = app
        self.config = config

    def _cookie_name(self, scope: Scope) -> str:
        # Cookies ignore ports: two torchscope servers on one machine must not share one.
        server = scope.get("server") or ("", 0)
        return f"torchscope_token_{server[1] or 0}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cfg = self.config
        headers = _headers(scope)
        host = headers.get("host", "")
        if not cfg.host_allowed(host):
            shown = host[:100] or "(none)"
            await _send_json(
                send,
                400,
                f"Host {shown!r} is not this server's name: a page on another site may be trying to reach it "
                "(DNS rebinding). Start torchscope with --allow-host NAME to allow a name (tunnels, proxies).",
                rule="host",
            )
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        if cfg.token is not None:
            handled = await self._check_token(scope, receive, send, headers)
            if handled:
                return
        refusal = self._origin_refusal(method, headers, host)
        if refusal is not None:
            await _send_json(send, 403, refusal, rule="origin")
            return
        if method in UNSAFE_METHODS and not self._write_allowed(headers):
            await _send_json(
                send,
                403,
                f"{method} needs a JSON body (Content-Type: application/json) or the X-Torchscope header: "
                "a page on another site can send neither",
                rule="origin",
            )
            return
        path: str = scope.get("path", "")
        if method in UNSAFE_METHODS and not path.startswith(cfg.streamed_paths):
            await self._bounded_body(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    # -- token

    async def _check_token(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> bool:
        """True when a response was sent (refused, or a redirect that sets the cookie)."""
        token = self.config.token
        assert token is not None
        given: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        if TOKEN_HEADER in headers:
            given.append(headers[TOKEN_HEADER])
        cookie_name = self._cookie_name(scope)
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed Cookie header is no token, not an error
                jar = SimpleCookie()
            if cookie_name in jar:
                given.append(jar[cookie_name].value)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        url_token = next((v for k, v in query if k == "token"), None)
        if url_token is not None:
            given.append(url_token)
        if any(hmac.compare_digest(g.encode(), token.encode()) for g in given):
            if url_token is not None and scope["method"] == "GET" and hmac.compare_digest(url_token.encode(), token.encode()):
                # Keep it in a cookie the browser sends only to this site, and drop it from the address bar.
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                location = scope.get("path", "/") + (f"?{rest}" if rest else "")
                cookie = f"{cookie_name}={token}; HttpOnly; SameSite=Strict; Path=/"
                if _wants_html(scope, headers) or headers.get("sec-fetch-mode") == "navigate":
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 303,
                            "headers": [
                                (b"location", location.encode("latin-1", "replace")),
                                (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return True
            return False
        if _wants_html(scope, headers) and scope["method"] in ("GET", "HEAD"):
            await _send_login(send, scope.get("path", "/"), wrong=bool(given))
            return True
        await _send_json(
            send,
            401,
            "this server needs its token: open the URL it printed at startup (…/?token=…), or send "
            "'Authorization: Bearer TOKEN' (or the X-Torchscope-Token header)",
            extra_headers=[(b"www-authenticate", b'Bearer realm="torchscope"')],
            rule="token",
        )
        return True

    # -- origin

    @staticmethod
    def _origin_refusal(method: str, headers: dict[str, str], host: str) -> str | None:
        origin = headers.get("origin")
        if origin is not None:
            own = {f"http://{host}".lower(), f"https://{host}".lower()}
            if origin.lower() not in own:
                return f"requests from {origin[:100]} are refused: only pages served by this server may call it"
            return None
        site = headers.get("sec-fetch-site")
        # Following a link to a page is fine (read-only); anything else another site sends is not.
        if site in ("cross-site", "same-site") and (method in UNSAFE_METHODS or headers.get("sec-fetch-mode") != "navigate"):
            return f"a {site} request is refused: only pages served by this server may call it"
        return None

    @staticmethod
    def _write_allowed(headers: dict[str, str]) -> bool:
        if CLIENT_HEADER in headers:
            return True
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return bool(ctype) and ctype not in FORM_TYPES

    # -- bodies

    async def _bounded_body(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        limit = self.config.max_body_bytes
        too_large = f"the request body is over the {limit // 1024} KB limit for API requests"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_large, rule="body_size", limit_kb=limit // 1024)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _send_json(send, 413, too_large, rule="body_size", limit_kb=limit // 1024)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if data and (ctype == "application/json" or ctype.endswith("+json")):
            problem = check_json_body(data, self.config.max_json_depth) if len(data) <= INLINE_JSON_CHECK else (
                await run_in_threadpool(check_json_body, data, self.config.max_json_depth)
            )
            if problem is not None:
                await _send_json(send, 422, problem, rule="json_budget")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def check_json_body(data: bytes, max_depth: int) -> str | None:
    """A reason to refuse a JSON body (too deep, an over-long integer), or None. Invalid JSON is the app's to report."""
    try:
        check_json_value(data, max_depth=max_depth, max_items=MAX_BODY_ITEMS, what="the JSON body")
    except JsonBudgetError as err:
        return str(err)
    except ValueError:
        return None
    return None


__all__ = [
    "CLIENT_HEADER",
    "TOKEN_HEADER",
    "SecurityConfig",
    "SecurityMiddleware",
    "config_from_settings",
    "generate_token",
    "is_loopback",
]
