"""gzip on pages, JSON and static files (plotly.js above all), with ETag/304 and cache headers kept;
the vendored cartesian plotly.js bundle matches the installed plotly's version and is what pages load."""

from __future__ import annotations

import gzip
import re

import plotly
from fastapi.testclient import TestClient

from torchscope import STATIC_DIR
from torchscope.main import plotly_js_dir, plotly_js_version

GZ = {"accept-encoding": "gzip"}


def raw_get(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """The bytes as sent (httpx would decompress them)."""
    with client.stream("GET", url, headers=headers) as r:
        return r.status_code, dict(r.headers), b"".join(r.iter_raw())


def test_json_and_pages_are_compressed_above_the_threshold(client: TestClient) -> None:
    status, headers, body = raw_get(client, "/api/models/tinytransformerlm/tree", GZ)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == client.get("/api/models/tinytransformerlm/tree").content
    _, page_headers, _ = raw_get(client, "/models/tinytransformerlm/weights", GZ)
    assert page_headers["content-encoding"] == "gzip"
    # small answers and clients that do not ask stay plain
    _, small, _ = raw_get(client, "/api/models/nope", GZ)
    assert "content-encoding" not in small
    _, plain, _ = raw_get(client, "/api/models/tinytransformerlm/tree", {"accept-encoding": "identity"})
    assert "content-encoding" not in plain


def test_plotly_bundle_is_served_gzipped_with_immutable_cache_and_304(client: TestClient) -> None:
    url = client.app.state.plotly_url  # type: ignore[attr-defined]
    status, headers, body = raw_get(client, url, GZ)
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    original = (STATIC_DIR / url.removeprefix("/static/")).read_bytes()
    assert gzip.decompress(body) == original and len(body) < len(original) / 2
    assert headers["etag"].startswith('W/"')
    again = client.get(url, headers={**GZ, "if-none-match": headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # the full bundle of the plotly package too, and our own scripts
    v = plotly_js_version()
    _, full, _ = raw_get(client, f"/vendor/plotly-{v}/plotly.min.js", GZ)
    assert full["content-encoding"] == "gzip" and "immutable" in full["cache-control"]
    _, js, _ = raw_get(client, "/static/js/weights.js", GZ)
    assert js["content-encoding"] == "gzip" and "immutable" not in js.get("cache-control", "")


def test_vendored_cartesian_bundle_is_the_installed_plotly_js_version_and_pages_defer_it(client: TestClient) -> None:
    v = plotly_js_version()
    folder = STATIC_DIR / "vendor" / f"plotly.js-cartesian-dist-min-{v}"
    head = (folder / "plotly-cartesian.min.js").read_text()[:200]
    assert f"plotly.js (cartesian - minified) v{v}" in head and (folder / "LICENSE").is_file()
    full_head = (plotly_js_dir() / "plotly.min.js").read_text()[:200]
    assert f"v{v}" in full_head and plotly.__version__  # the package ships the same plotly.js version
    for path in ("/models/tinytransformerlm/weights", "/models/tinytransformerlm/init", "/schedules"):
        html = client.get(path).text
        tag = re.search(r'<script id="plotly-js" src="([^"]+)" defer></script>', html)
        assert tag and tag.group(1) == f"/static/vendor/plotly.js-cartesian-dist-min-{v}/plotly-cartesian.min.js", path
