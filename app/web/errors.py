"""Every error becomes a precise answer: JSON for /api, a readable page elsewhere. Never a traceback."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from torchscope.inspect.errors import InspectError
from torchscope.web.deps import render

log = logging.getLogger("torchscope")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.startswith("/vendor/") or path.startswith("/static/") or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")
    )


def _answer(
    request: Request, status: int, detail: str, extra: dict[str, object] | None = None, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": detail, **(extra or {})}, status_code=status, headers=headers)
    response = render(request, "error.html", status_code=status, status=status, detail=detail)
    response.headers.update(headers or {})
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route accepts at this path (Starlette's 405 names only the first route's)."""
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.router.routes)
    ]
    return ", ".join(allowed)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InspectError)
    async def inspect_error(request: Request, exc: InspectError) -> Response:
        return _answer(request, exc.status, exc.message, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            # FastAPI's own list of errors stays under "errors"; "detail" is one readable line.
            errors = exc.errors()
            first = [str(x) for x in (errors[0].get("loc", ()) if errors else ()) if x not in ("body", "query", "path")]
            extra = {"field": ".".join(first)} if first else {}
            return JSONResponse(
                {"detail": _validation_message(exc), **extra, "errors": _jsonable(errors)}, status_code=422
            )
        return _answer(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return _answer(request, exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: log it with its traceback under an id, answer with the id only
        # (exception text can hold server paths and internals), keep serving.
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return _answer(request, 500, f"internal error (id {error_id}): the server log has the details", {"error_id": error_id})


def _jsonable(errors: Sequence[Any]) -> object:
    """FastAPI's error list, safe to send: no echoed input (it may be huge, or inf/NaN)."""
    slim = [{k: v for k, v in dict(e).items() if k not in ("input", "ctx", "url")} for e in errors]
    return json.loads(json.dumps(slim, default=str), parse_constant=str)
