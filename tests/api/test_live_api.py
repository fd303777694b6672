"""GET /api/models/{id}/version: what an open page polls (static/js/live.js), for CLI-served models."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

PLAN = {"rules": [{"match": "Linear", "tensor": "bias", "fn": "zeros_", "args": {}}], "seed": 0}


def version(client: TestClient, model_id: str = "twolayernet") -> dict:  # type: ignore[type-arg]
    r = client.get(f"/api/models/{model_id}/version")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_the_revision_counts_every_change_the_dashboard_makes(client: TestClient) -> None:
    v0 = version(client)
    assert v0 == {"model": "twolayernet", "revision": 0, "version": 0, "live": False, "modified": False, "poll_ms": 1000}
    client.get("/api/models/twolayernet/histogram", params={"tensor": "fc1.weight"})
    assert version(client) == v0  # reading is no change
    assert client.post("/api/models/twolayernet/init/preview", json=PLAN).status_code == 200
    assert version(client) == v0  # nor is a preview
    assert client.post("/api/models/twolayernet/init/apply", json=PLAN).status_code == 200
    v1 = version(client)
    assert v1["revision"] == 1 and v1["version"] == 0 and v1["modified"]  # values only: structure views kept
    assert client.post("/api/models/twolayernet/init/reset", headers={"X-Torchscope": "1"}).status_code == 200
    v2 = version(client)
    assert v2["revision"] == 2 and not v2["modified"]


def test_pages_carry_the_revision_they_were_drawn_from(client: TestClient) -> None:
    client.post("/api/models/twolayernet/init/apply", json=PLAN)
    for url in ["/models/twolayernet", "/models/twolayernet/weights", "/models/twolayernet/init"]:
        live = re.search(r"data-live='([^']*)'", client.get(url).text)
        assert live and json.loads(live.group(1)) == {"twolayernet": 1}, url
    assert "data-live" not in client.get("/").text  # CLI models: the index does not poll them
    assert "data-live" not in client.get("/schedules").text  # no model on it: nothing to poll


def test_an_unknown_model_is_a_404(client: TestClient) -> None:
    r = client.get("/api/models/nope/version")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
