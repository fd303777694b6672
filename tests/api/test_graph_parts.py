"""Graph views too wide to draw at once come cut into parts (``inspect/graph/parts.py``): every
node is in exactly one part, in order; parts join their parent by tensor like module boxes do;
their numbers are their members' (against torch); search says which parts to open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from tests.conftest import LOCAL
from tests.fixtures.graph_models import StemRunHead, long_chain
from torchscope.inspect.graph.parts import MAX_NODES
from torchscope.main import create_app
from torchscope.settings import Settings

SPECS = [
    "tests.fixtures.graph_models:StemRunHead",
    "tests.fixtures.graph_models:long_chain",
    "tests.fixtures.graph_models:alternating",
    "torchscope.examples:NestedNet",
]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(specs=SPECS)), base_url=LOCAL) as c:
        yield c


def graph(client: TestClient, model: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/models/{model}/graph", params={"capture": "hooks", **params})
    assert r.status_code == 200, r.text
    return r.json()


def parts(g: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in g["nodes"] if "part" in n]


def body_ids(g: dict[str, Any]) -> list[str]:
    return [n["id"] for n in g["nodes"] if n["kind"] not in ("input", "output")]


def params_of(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_a_run_of_identical_blocks_is_one_part(client: TestClient) -> None:
    g = graph(client, "stemrunhead")
    assert len(g["nodes"]) <= MAX_NODES
    [run] = parts(g)
    assert [n["id"] for n in g["nodes"] if n["kind"] == "module"] == ["m:stem#0", run["id"], "m:head#0"]
    assert run["label"] == "blocks.0 … blocks.399" and run["class"] == "400 \u00d7 Sequential"
    assert run["part"] == {"lo": 1, "hi": 401, "count": 400, "modules": 400} and run["id"] == "m:#0/1-401"
    assert run["expandable"] is True and run["call"] == 0 and run["path"] == ""
    model = StemRunHead()
    assert run["params"] == sum(params_of(b) for b in model.blocks) == 400 * 20
    assert run["signature"] is not None and run["shapes_in"] == [{"shape": [1, 4], "dtype": "float32"}]
    # edges: stem -> the run -> head, one tensor each way
    pairs = {(e["source"], e["target"]) for e in g["edges"]}
    assert ("m:stem#0", run["id"]) in pairs and (run["id"], "m:head#0") in pairs
    # the run's own view: 400 blocks in one run, so sliced (never the same part again)
    inner = graph(client, "stemrunhead", part="1-401")
    assert inner["part"] == [1, 401]
    slices = parts(inner)
    assert [(p["part"]["lo"], p["part"]["hi"]) for p in slices] == [(1, 101), (101, 201), (201, 301), (301, 401)]
    assert slices[0]["label"] == "blocks.0 … blocks.99"


def test_parts_cover_every_node_once_in_order_and_join_by_tensor(client: TestClient) -> None:
    whole = graph(client, "long_chain")
    slices = parts(whole)
    assert [(p["part"]["lo"], p["part"]["hi"]) for p in slices] == [(i, i + 100) for i in range(0, 700, 100)]
    assert sum(p["params"] for p in slices) == params_of(long_chain())
    assert sum(p["flops"] for p in slices) == whole["totals"]["flops"]
    members: list[str] = []
    for p in slices:
        view = graph(client, "long_chain", part=f"{p['part']['lo']}-{p['part']['hi']}")
        assert len(view["nodes"]) == 102 and not parts(view)
        members += body_ids(view)
        # the tensors into and out of the part, as the parent draws them, are the part's ports
        into = {e["value"] for e in whole["edges"] if e["target"] == p["id"]}
        out_of = {e["value"] for e in whole["edges"] if e["source"] == p["id"]}
        assert {n["value"] for n in view["nodes"] if n["kind"] == "input"} == into
        assert {n["value"] for n in view["nodes"] if n["kind"] == "output"} == out_of
        ids = {n["id"] for n in view["nodes"]}
        assert all(e["source"] in ids and e["target"] in ids for e in view["edges"])
    assert members == [f"m:{i}#0" for i in range(700)]


def test_nodes_of_different_kinds_are_sliced_and_summarised(client: TestClient) -> None:
    g = graph(client, "alternating")
    slices = parts(g)
    assert len(slices) == 8 and slices[0]["class"] == "50 Linear, 50 ReLU" and slices[0]["label"] == "0 … 99"
    assert slices[0]["signature"] is None and slices[0]["params"] == 50 * 20
    # a part lists a few of its tensors (histogram links) and counts the rest
    assert len(slices[0]["tensors"]) == 20 and slices[0]["tensors_more"] == 80


def test_small_views_are_never_cut_and_bad_parts_are_refused(client: TestClient) -> None:
    g = graph(client, "nestednet")
    assert not parts(g) and g["part"] is None
    r = client.get("/api/models/nestednet/graph", params={"part": "0-2"})
    assert r.status_code == 404 and "drawn without parts" in r.json()["detail"]
    r = client.get("/api/models/long_chain/graph", params={"part": "650-800", "capture": "hooks"})
    assert r.status_code == 404 and "700 node(s)" in r.json()["detail"]
    for bad in ("5", "a-b", "-1-3", "1-2-3"):
        assert client.get("/api/models/long_chain/graph", params={"part": bad}).status_code == 422


def test_search_says_which_parts_to_open(client: TestClient) -> None:
    r = client.get("/api/models/stemrunhead/graph/search", params={"q": "blocks.250.1", "capture": "hooks"})
    match = next(m for m in r.json()["matches"] if m["path"] == "blocks.250.1")
    assert match["reveal"] == [
        {"path": "", "call": 0, "part": [1, 401]},
        {"path": "", "call": 0, "part": [201, 301]},
        {"path": "blocks.250", "call": 0},
    ]
    # following the steps, the match is drawn
    view = graph(client, "stemrunhead", part="201-301")
    assert "m:blocks.250#0" in body_ids(view)
    assert match["id"] in body_ids(graph(client, "stemrunhead", path="blocks.250"))


def test_export_capture_is_cut_the_same_way(client: TestClient) -> None:
    g = client.get("/api/models/long_chain/graph").json()
    assert g["capture"] == "export"
    assert [p["part"]["lo"] for p in parts(g)] == list(range(0, 700, 100))
