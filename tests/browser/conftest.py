"""Real-browser fixtures: a real uvicorn server on a free port, Debian's Chromium driven by Playwright.

See ../shared/BROWSER_TESTS.md. Pages set ``data-ready="1"`` when drawn; tests
wait on that, never on sleeps. Every test fails on a console error, a page
error, or a request that leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from torchscope.main import create_app
from torchscope.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def chromium_path() -> str:
    for candidate in (os.environ.get("TORCHSCOPE_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium not found: `make test` installs Debian's chromium package (apt-get install chromium)")


@dataclass
class LiveServer:
    """A real uvicorn server in a daemon thread, on a socket bound before it starts (no port race)."""

    settings: Settings
    url: str = ""
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    app: object = field(default=None, repr=False)

    def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server_factory() -> Iterator[Callable[[Settings], LiveServer]]:
    """Start a server for custom Settings; all are stopped at the end of the session."""
    servers: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        server = LiveServer(settings).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def live_server(live_server_factory: Callable[[Settings], LiveServer]) -> LiveServer:
    """The built-in example models, served for real."""
    return live_server_factory(Settings())


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--disable-gpu", "--disable-quic"]
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    # One context for the session: its HTTP cache keeps plotly.js between tests.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@dataclass
class PageProblems:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser_context: BrowserContext, page_problems: PageProblems) -> Iterator[Page]:
    """A fresh tab that fails the test on console errors, page errors, or requests off this machine.

    A test that expects an error response on purpose can clear ``page_problems.console_errors``.
    """
    pg = browser_context.new_page()

    def on_console(msg: object) -> None:
        if getattr(msg, "type", "") == "error":
            page_problems.console_errors.append(getattr(msg, "text", str(msg)))

    def on_request(request: object) -> None:
        host = urlparse(getattr(request, "url", "")).hostname or ""
        if host not in ("127.0.0.1", "localhost", "") and not getattr(request, "url", "").startswith("data:"):
            page_problems.external_requests.append(getattr(request, "url", ""))

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: page_problems.page_errors.append(str(exc)))
    pg.on("request", on_request)
    yield pg
    pg.close()
    assert not page_problems.page_errors, f"page errors: {page_problems.page_errors}"
    assert not page_problems.console_errors, f"console errors: {page_problems.console_errors}"
    assert not page_problems.external_requests, f"requests left the machine: {page_problems.external_requests}"
