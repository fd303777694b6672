"""Issue 9 in a real Chromium: a page on another origin (a second local server, on another port)
tries to read the weights, reset a changed model and upload a file; a page reached through a
DNS-rebound name tries the same. None of it works, and the dashboard's own pages still do."""

from __future__ import annotations

import http.server
import io
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import torch
from playwright.sync_api import Browser, Page

from tests.browser.conftest import LiveServer, PageProblems, chromium_path
from torchscope.settings import Settings

ATTACK = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<form id="reset" method="post" target="sink" enctype="text/plain"></form>
<iframe name="sink"></iframe>
<script>
window.results = {};
async function attempt(name, fn) {
  try { results[name] = await fn(); } catch (e) { results[name] = "blocked: " + e.name; }
}
async function run(target, checkpoint) {
  await attempt("read", async () => {
    const r = await fetch(target + "/api/models/twolayernet/state_dict");
    return "read " + (await r.arrayBuffer()).byteLength + " bytes";
  });
  await attempt("read_no_cors", async () => {
    const r = await fetch(target + "/api/models/twolayernet/state_dict", {mode: "no-cors"});
    return "opaque " + r.type;
  });
  await attempt("json_write", async () => {
    const r = await fetch(target + "/api/models/twolayernet/init/reset", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: "{}"});
    return "status " + r.status;
  });
  await attempt("simple_write", async () => {
    await fetch(target + "/api/models/twolayernet/init/reset", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: "x"});
    return "sent";
  });
  await attempt("upload", async () => {
    const fd = new FormData();
    fd.append("file", new Blob([Uint8Array.from(atob(checkpoint), c => c.charCodeAt(0))]), "evil.pt");
    await fetch(target + "/api/checkpoints/upload?filename=evil.pt", {method: "POST", mode: "no-cors", body: fd});
    return "sent";
  });
  await attempt("xhr_upload", () => new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", target + "/api/checkpoints/upload?filename=evil2.pt");
    xhr.setRequestHeader("X-Torchscope", "1");
    xhr.onload = () => resolve("status " + xhr.status);
    xhr.onerror = () => resolve("blocked: network error");
    xhr.send(Uint8Array.from(atob(checkpoint), c => c.charCodeAt(0)));
  }));
  const form = document.getElementById("reset");
  form.action = target + "/api/models/twolayernet/init/reset";
  await new Promise((resolve) => { document.querySelector("iframe").onload = resolve; form.submit(); });
  results.form = "submitted";
  return results;
}
</script></body></html>"""


class AttackerSite:
    """Another origin: a plain HTTP server on another port of this machine."""

    def __init__(self) -> None:
        body = ATTACK.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    yield site
    site.httpd.shutdown()


@pytest.fixture(scope="module")
def server(live_server_factory: Callable[[Settings], LiveServer]) -> LiveServer:
    return live_server_factory(Settings(specs=["torchscope.examples:TwoLayerNet"]))


def api(server: LiveServer, path: str, body: object | None = None) -> object:
    req = urllib.request.Request(server.url + path, method="GET" if body is None else "POST")
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def checkpoint_b64() -> str:
    import base64

    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    return base64.b64encode(buf.getvalue()).decode()


def test_another_origin_can_neither_read_nor_write(
    page: Page, server: LiveServer, attacker: AttackerSite, page_problems: PageProblems
) -> None:
    # the user changed the weights on purpose; a page elsewhere must not be able to reset them
    plan = {"rules": [{"match": "Linear", "tensor": "weight", "fn": "zeros_"}], "seed": 0}
    api(server, "/api/models/twolayernet/init/apply", plan)
    before = api(server, "/api/models/twolayernet/overview")
    assert before["modified"] is True  # type: ignore[index]

    page.goto(attacker.url + "/")
    results = page.evaluate("([t, c]) => run(t, c)", [server.url, checkpoint_b64()])
    page_problems.console_errors.clear()  # the browser reports the blocked requests, as it should

    assert results["read"].startswith("blocked"), results  # no CORS answer: the bytes never reach the page
    assert results["json_write"].startswith("blocked"), results  # the preflight is not answered
    assert results["xhr_upload"].startswith("blocked"), results
    after = api(server, "/api/models/twolayernet/overview")
    assert after["modified"] is True, results  # type: ignore[index]  # no reset got through
    assert after == before
    assert api(server, "/api/checkpoints") == []  # no upload got through
    assert not list(server.app.state.upload_dir.iterdir())  # type: ignore[attr-defined]


def test_the_dashboards_own_pages_still_write(page: Page, server: LiveServer) -> None:
    """Same origin: the init page's reset button (JSON via ts.api) works."""
    page.goto(server.url + "/models/twolayernet/init")
    status = page.evaluate(
        "() => ts.api('/api/models/twolayernet/init/reset', {method: 'POST'}).then(() => 'ok', e => String(e.status))"
    )
    assert status == "ok"
    assert api(server, "/api/models/twolayernet/overview")["modified"] is False  # type: ignore[index]


def test_a_dns_rebound_name_gets_nothing(browser: Browser, server: LiveServer) -> None:
    """rebind.test resolves to 127.0.0.1 (as after DNS rebinding): its pages are same-origin with
    themselves, so only the Host check stands between them and the weights."""
    port = server.url.rsplit(":", 1)[1]
    rebound = browser.browser_type.launch(
        executable_path=chromium_path(), headless=True,
        args=["--disable-gpu", "--disable-quic", "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
    )
    try:
        pg = rebound.new_page()
        response = pg.goto(f"http://rebind.test:{port}/api/models/twolayernet/state_dict")
        assert response is not None and response.status == 400
        assert "DNS rebinding" in pg.content()
        status = pg.evaluate(
            """() => fetch('/api/models/twolayernet/init/apply', {method: 'POST', headers: {'Content-Type':
            'application/json'}, body: JSON.stringify({rules: [{match: 'Linear', fn: 'zeros_'}]})}).then(r => r.status)"""
        )
        assert status == 400
    finally:
        rebound.close()
    assert api(server, "/api/models/twolayernet/overview")["modified"] is False  # type: ignore[index]
