"""Every route of the OpenAPI schema answers odd input with a 2xx/4xx, never a 5xx."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import LOCAL
from torchscope.main import create_app
from torchscope.settings import Settings

ODD = ["", "-1", "1e309", "nan", "../../etc/passwd", "☃", "[]", "{}", "x" * 3000]


def test_odd_values_in_every_query_and_body_never_give_5xx() -> None:
    settings = Settings(specs=["torchscope.examples:TinyTransformerLM", "tests.fixtures.models:LazyNet"])
    with TestClient(create_app(settings), raise_server_exceptions=False, base_url=LOCAL) as c:
        spec = c.get("/openapi.json").json()["paths"]
        seen = 0
        failures = []
        for path, methods in spec.items():
            for method, op in methods.items():
                params = [q["name"] for q in op.get("parameters", []) if q["in"] == "query"]
                for model_id in ["tinytransformerlm", "lazynet", "nope"]:
                    url = path.replace("{model_id}", model_id).replace("{cid}", "nope")
                    for odd in ODD:
                        query = {name: odd for name in params}
                        r = c.request(method.upper(), url, params=query, content=odd,
                                      headers={"content-type": "application/json"})
                        seen += 1
                        if r.status_code >= 500:
                            failures.append((method, url, odd[:12], r.status_code, r.text[:120]))
                        else:
                            assert r.status_code < 300 or "detail" in r.json(), (method, url, odd)
        assert seen > 500
        assert failures == []


def test_a_non_finite_json_body_is_a_422() -> None:
    with TestClient(create_app(Settings(specs=["torchscope.examples:TwoLayerNet"])), base_url=LOCAL) as c:
        r = c.post("/api/schedules/preview", content="1e309", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"]
