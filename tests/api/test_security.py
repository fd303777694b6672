"""Issue 9: only the dashboard's own origin talks to the server (web/security.py), over a real app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import LOCAL
from torchscope.main import create_app
from torchscope.settings import Settings

MakeClient = Callable[[Settings], TestClient]
TINY = ["torchscope.examples:TwoLayerNet"]
APPLY = "/api/models/twolayernet/init/apply"
PLAN = {"rules": [{"match": "Linear", "tensor": "weight", "fn": "zeros_"}], "seed": 0}


@pytest.fixture
def tiny(make_client: MakeClient) -> TestClient:
    return make_client(Settings(specs=TINY))


# --------------------------------------------------------------------------- Host (DNS rebinding)


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example", "attacker.test:80", "", "testserver"],
)
def test_foreign_host_headers_are_refused(tiny: TestClient, host: str) -> None:
    """After DNS rebinding a page's own name points at 127.0.0.1; it still sends that name as Host."""
    r = tiny.get("/api/models/twolayernet/state_dict", headers={"Host": host})
    assert r.status_code == 400 and r.json()["rule"] == "host" and "--allow-host" in r.json()["detail"]
    r = tiny.post(APPLY, json=PLAN, headers={"Host": host})
    assert r.status_code == 400
    assert tiny.get("/api/models/twolayernet/overview").json()["modified"] is False  # nothing was zeroed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:1234", "LOCALHOST", "[::1]:8000", "::1"])
def test_own_names_are_served(tiny: TestClient, host: str) -> None:
    assert tiny.get("/api/models", headers={"Host": host}).status_code == 200


def test_allow_host_adds_names(make_client: MakeClient) -> None:
    c = make_client(Settings(specs=TINY, allow_hosts=["tunnel.example.org"]))
    assert c.get("/api/models", headers={"Host": "tunnel.example.org:443"}).status_code == 200
    assert c.get("/api/models", headers={"Host": "other.example.org"}).status_code == 400


def test_wildcard_bind_accepts_ip_literals_but_not_names(make_client: MakeClient) -> None:
    c = make_client(Settings(specs=TINY, host="0.0.0.0"))
    assert c.get("/api/models", headers={"Host": "192.168.1.20:8000"}).status_code == 200
    assert c.get("/api/models", headers={"Host": "evil.example:8000"}).status_code == 400


# --------------------------------------------------------------------------- Origin and writes


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},  # another local server: another origin
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},  # a cross-site form POST
    ],
)
def test_writes_from_other_sites_are_refused(tiny: TestClient, headers: dict[str, str]) -> None:
    r = tiny.post(APPLY, json=PLAN, headers=headers)
    assert r.status_code == 403 and r.json()["rule"] == "origin", r.text
    r = tiny.post("/api/models/twolayernet/init/reset", headers={**headers, "X-Torchscope": "1"})
    assert r.status_code == 403
    assert tiny.get("/api/models/twolayernet/overview").json()["modified"] is False


def test_reads_from_other_sites_are_refused_but_links_to_pages_work(tiny: TestClient) -> None:
    r = tiny.get("/api/models/twolayernet/state_dict", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = tiny.get("/api/models/twolayernet/histogram?tensor=fc1.weight", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert r.status_code == 403
    # following a link from another site to a page is a navigation: allowed (it cannot read or write anything)
    r = tiny.get("/models/twolayernet", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200


def test_own_origin_and_same_origin_fetches_are_served(tiny: TestClient) -> None:
    own = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert tiny.post(APPLY, json=PLAN, headers=own).status_code == 200
    assert tiny.post("/api/models/twolayernet/init/reset", headers={**own, "X-Torchscope": "1"}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"content": b""},  # an empty body: what <form method=post> with no fields sends
        {"content": b"x=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {"content": b'{"rules": []}', "headers": {"Content-Type": "text/plain"}},
        {"files": {"file": ("x.pt", b"123")}},  # multipart
    ],
)
def test_writes_need_json_or_the_client_header(tiny: TestClient, kwargs: dict[str, Any]) -> None:
    """What a cross-site form (or a no-preflight fetch) can send is refused, whatever the Origin says."""
    for url in ("/api/models/twolayernet/init/reset", "/api/checkpoints/upload?filename=x.pt"):
        r = tiny.post(url, **kwargs)
        assert r.status_code == 403 and "X-Torchscope" in r.json()["detail"], (url, r.text)
    r = tiny.delete("/api/checkpoints/nope")
    assert r.status_code == 403
    assert tiny.delete("/api/checkpoints/nope", headers={"X-Torchscope": "1"}).status_code == 404


# --------------------------------------------------------------------------- bodies


def test_large_bodies_are_refused_before_reading(make_client: MakeClient) -> None:
    c = make_client(Settings(specs=TINY, max_body_kb=64))
    big = b'{"rules": [' + b"1," * 40_000 + b"1]}"
    r = c.post(APPLY, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "64 KB" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b" " * 4096

    r = c.post(APPLY, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert c.get("/api/models").status_code == 200


def test_deep_or_huge_json_bodies_are_422s_naming_the_limit(tiny: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = tiny.post("/api/schedules/preview", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "levels" in r.json()["detail"]
    r = tiny.post("/api/schedules/preview", content='{"epochs": 1' + "0" * 5000 + "}", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "digit" in r.json()["detail"]
    r = tiny.post("/api/schedules/preview", content="[" + "[]," * 300_000 + "[]]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "elements" in r.json()["detail"]


# --------------------------------------------------------------------------- tokens


@pytest.fixture
def with_token(make_client: MakeClient) -> TestClient:
    return make_client(Settings(specs=TINY, token="s3cret-token"))


def test_token_is_needed_everywhere(with_token: TestClient) -> None:
    r = with_token.get("/api/models")
    assert r.status_code == 401 and r.json()["rule"] == "token" and "Bearer" in r.headers["www-authenticate"]
    page = with_token.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "<form" in page.text and "s3cret" not in page.text
    wrong = with_token.get("/api/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert with_token.get("/static/js/common.js").status_code == 401


def test_token_as_header_or_bearer(with_token: TestClient) -> None:
    assert with_token.get("/api/models", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert with_token.get("/api/models", headers={"X-Torchscope-Token": "s3cret-token"}).status_code == 200
    assert with_token.get("/api/models?token=s3cret-token").status_code == 200


def test_token_in_the_url_once_then_a_strict_httponly_cookie(with_token: TestClient) -> None:
    r = with_token.get("/models/twolayernet?token=s3cret-token&x=1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/models/twolayernet?x=1"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    with_token.cookies.set(cookie.split("=", 1)[0], "s3cret-token")
    assert with_token.get("/models/twolayernet", headers={"Accept": "text/html"}).status_code == 200
    assert with_token.get("/api/models").status_code == 200


# --------------------------------------------------------------------------- errors


def test_405_names_every_allowed_method(tiny: TestClient) -> None:
    r = tiny.put("/api/checkpoints/nope", json={})
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "DELETE"}


def test_500_bodies_carry_an_id_not_exception_text(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    c = make_client(Settings(specs=TINY))
    app: FastAPI = c.app  # type: ignore[assignment]

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret /home/user/path in the message")

    c2 = TestClient(app, base_url=LOCAL, raise_server_exceptions=False)
    r = c2.get("/api/boom")
    assert r.status_code == 500 and "secret" not in r.text and "/home" not in r.text
    error_id = r.json()["error_id"]
    assert error_id in r.json()["detail"]
    assert any(error_id in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_create_app_without_settings_is_local_only() -> None:
    with TestClient(create_app(), base_url=LOCAL) as c:
        assert c.get("/api/models", headers={"Host": "evil.example"}).status_code == 400
