"""gzip for every response above a size threshold: pages, JSON, and static files (plotly.js above all).

plotly.js is 1.5-4.8 MB and JSON of a big model's tree several MB; gzip takes about
two thirds off. Dynamic responses go through starlette's GZipMiddleware. Static
files are compressed once per file version and kept in memory (compressing the full
plotly bundle costs ~0.3 s a time), with their ETag (made weak: the bytes differ from
the file's, the content does not), Last-Modified and Cache-Control kept, so 304s
still work; GZipMiddleware leaves a response that already has a Content-Encoding alone.
"""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, Response
from starlette.types import Scope

# Below this, gzip's header and the CPU cost outweigh the bytes saved.
MINIMUM_SIZE = 1024
# Dynamic bodies are compressed on every request: a middle level (level 9 costs ~3x
# the CPU for ~2% fewer bytes). Static files are compressed once, so at the best level.
DYNAMIC_LEVEL = 6
STATIC_LEVEL = 9
# Static files kept compressed in memory only up to this size each (the full plotly.js is 4.8 MB).
MAX_CACHED = 16 << 20

_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")


def install_compression(app: FastAPI) -> None:
    """gzip every dynamic response of at least ``MINIMUM_SIZE`` bytes when the client accepts it."""
    app.add_middleware(GZipMiddleware, minimum_size=MINIMUM_SIZE, compresslevel=DYNAMIC_LEVEL)


def accepts_gzip(scope: Scope) -> bool:
    return "gzip" in Headers(scope=scope).get("accept-encoding", "").lower()


class CompressedStatic(StaticFiles):
    """StaticFiles that answers gzip-accepting clients with a cached compressed copy."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._cache: dict[tuple[str, float, int], bytes] = {}
        self._lock = threading.Lock()

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if not isinstance(response, FileResponse) or response.status_code != 200 or not accepts_gzip(scope):
            return response
        media_type = (response.media_type or "").split(";")[0]
        st = response.stat_result
        if st is None or not media_type.startswith(_COMPRESSIBLE) or not MINIMUM_SIZE <= st.st_size <= MAX_CACHED:
            return response
        body = await anyio.to_thread.run_sync(self._compressed, Path(response.path), st)
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "etag")}
        headers["etag"] = "W/" + response.headers["etag"]
        headers["content-encoding"] = "gzip"
        headers["vary"] = "Accept-Encoding"
        return Response(body, status_code=200, headers=headers, media_type=response.media_type)

    def precompress(self, *relative: str) -> None:
        """Compress these files now (call from a thread at startup), so the first page is not slower."""
        for name in relative:
            path = Path(str(self.directory)) / name
            if path.is_file():
                self._compressed(path, path.stat())

    def _compressed(self, path: Path, st: os.stat_result) -> bytes:
        key = (str(path), st.st_mtime, st.st_size)
        with self._lock:
            body = self._cache.get(key)
            if body is None:
                # mtime=0: the same bytes every time (gzip stores a timestamp otherwise).
                body = gzip.compress(path.read_bytes(), STATIC_LEVEL, mtime=0)
                self._cache = {k: v for k, v in self._cache.items() if k[0] != key[0]}
                self._cache[key] = body
            return body
