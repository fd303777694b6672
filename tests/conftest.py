"""Shared fixtures: an app per test (lifespan runs), the fixture-model zoo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from torchscope.main import create_app
from torchscope.settings import Settings

# The server answers only its own names (issue 9): TestClient's default Host "testserver" is refused.
LOCAL = "http://127.0.0.1"


@pytest.fixture
def client() -> Iterator[TestClient]:
    """A TestClient on the built-in example models."""
    with TestClient(create_app(Settings()), base_url=LOCAL) as c:
        yield c


@pytest.fixture
def make_client() -> Iterator[object]:
    """Build a TestClient for custom Settings: ``make_client(Settings(specs=[...]))``."""
    opened: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        c = TestClient(create_app(settings), base_url=LOCAL)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
