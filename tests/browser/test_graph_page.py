"""The Graph page in a real Chromium on a GPT-2-like model (transformers, tiny config): expand and
collapse in place, search and highlight, overlays with a legend, side panel links, SVG/PNG export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from torchscope.settings import Settings

READY = "document.getElementById('graph-panel').dataset.ready === '1'"


@pytest.fixture(scope="module")
def gpt2_server(live_server_factory: Callable[[Settings], LiveServer]) -> LiveServer:
    return live_server_factory(Settings(specs=["tests.fixtures.graph_models:tiny_gpt2"]))


def open_graph(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/models/tiny_gpt2/graph")
    page.wait_for_function(READY, timeout=60_000)


def relaid(page: Page, action: Callable[[], None]) -> None:
    """Run an action that relays the graph out, and wait for the new drawing."""
    page.evaluate("document.getElementById('graph-panel').dataset.ready = 'waiting'")
    action()
    page.wait_for_function(READY)


def node(page: Page, node_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#viewport [data-id="{node_id}"]')


def test_expand_in_place_to_any_depth_and_collapse(page: Page, gpt2_server: LiveServer) -> None:
    open_graph(page, gpt2_server)
    expect(page.locator("#capture-badge")).to_have_text("torch.export")
    expect(node(page, "m:transformer#0")).to_be_visible()
    expect(node(page, "m:lm_head#0")).to_be_visible()
    # the KV cache's 6 tensors (3 blocks x keys, values) are one output node, fed by one edge
    expect(node(page, "outs:past_key_values")).to_contain_text("6 tensors")
    cache = page.locator('#viewport .g-edge[data-target="outs:past_key_values"]')
    expect(cache).to_have_count(1)
    expect(cache).to_contain_text("6 \u00d7 [1\u00d72\u00d7")
    relaid(page, lambda: node(page, "m:transformer#0").locator(".toggle").click())
    # the box became a frame holding its own graph: the 3 blocks, each badged as a repeat
    expect(page.locator('#viewport .g-group[data-id="m:transformer#0"]')).to_have_count(1)
    blocks = page.locator('#viewport .g-node[data-path^="transformer.h."][data-kind="module"]')
    expect(blocks).to_have_count(3)
    expect(node(page, "m:transformer.h.1#0").locator(".badge-rep text")).to_have_text("\u00d73")
    # the edge into the expanded box now reaches the op inside it that reads input_ids (a view)
    edge = page.locator('#viewport .g-edge[data-source="in:input_ids"]')
    expect(edge).to_have_count(1)
    target = edge.get_attribute("data-target") or ""
    expect(page.locator(f'#viewport .g-node[data-id="{target}"]')).to_have_attribute("data-path", "transformer")
    relaid(page, lambda: node(page, "m:transformer.h.0#0").locator(".toggle").click())
    relaid(page, lambda: node(page, "m:transformer.h.0.attn#0").locator(".toggle").click())
    sdpa = page.locator('#viewport .g-node[data-kind="op"]', has_text="scaled_dot_product_attention")
    expect(sdpa).to_have_count(1)
    # a residual add in h.0 reads the stream (from outside the block) and the attention branch
    adds = page.locator('#viewport .g-node[data-kind="op"][data-path="transformer.h.0"]', has_text="add")
    expect(adds).to_have_count(2)
    page.click("#fit")
    relaid(page, lambda: page.locator('#viewport .g-group[data-id="m:transformer.h.0#0"] > text.title').click())
    expect(sdpa).to_have_count(0)
    expect(node(page, "m:transformer.h.0#0")).to_be_visible()
    relaid(page, lambda: page.click("#collapse-all"))
    expect(page.locator("#viewport .g-group")).to_have_count(0)


def test_search_reveals_and_highlights_up_and_downstream(page: Page, gpt2_server: LiveServer) -> None:
    open_graph(page, gpt2_server)
    page.fill("#graph-search", "h.1.mlp.c_fc")
    item = page.locator('#search-results li[data-id="m:transformer.h.1.mlp.c_fc#0"]')
    expect(item).to_be_visible()
    relaid(page, lambda: item.click())
    focus = node(page, "m:transformer.h.1.mlp.c_fc#0")
    expect(focus).to_have_class("g-node kind-module expandable hl-focus selected")
    # upstream: ln_2 feeds c_fc; downstream: the activation reads it
    expect(node(page, "m:transformer.h.1.ln_2#0")).to_have_class("g-node kind-module expandable hl-up")
    expect(node(page, "m:transformer.h.1.mlp.act#0")).to_have_class("g-node kind-module expandable hl-down")
    expect(page.locator("#side-title")).to_have_text("transformer.h.1.mlp.c_fc")
    link = page.locator("#side-tensors a", has_text="transformer.h.1.mlp.c_fc.weight")
    expect(link).to_have_attribute("href", "/models/tiny_gpt2/weights?tensor=transformer.h.1.mlp.c_fc.weight")
    expect(page.locator("#side-tree")).to_have_attribute("href", "/models/tiny_gpt2?q=transformer.h.1.mlp.c_fc")


def test_overlay_colours_nodes_with_a_legend(page: Page, gpt2_server: LiveServer) -> None:
    open_graph(page, gpt2_server)
    relaid(page, lambda: node(page, "m:transformer#0").locator(".toggle").click())
    page.select_option("#overlay", "params")
    expect(page.locator("#legend")).to_be_visible()
    expect(page.locator("#legend")).to_contain_text("parameters")
    # a block (2 LayerNorms, attention, MLP: 12,704 parameters) is the largest box on screen
    expect(page.locator("#legend-max")).to_have_text("12,704")
    fill = "id => getComputedStyle(document.querySelector(`[data-id='${id}'] rect`)).fill"
    assert page.evaluate(fill, "m:transformer.h.0#0") == "rgb(220, 38, 38)"
    assert page.evaluate(fill, "m:transformer.drop#0") != "rgb(220, 38, 38)"
    page.select_option("#overlay", "std")
    expect(page.locator("#legend")).to_contain_text("weight std")
    page.select_option("#overlay", "")
    expect(page.locator("#legend")).to_be_hidden()


def test_export_svg_and_png(page: Page, gpt2_server: LiveServer) -> None:
    open_graph(page, gpt2_server)
    with page.expect_download() as svg_info:
        page.click("#export-svg")
    svg_text = Path(svg_info.value.path()).read_text(encoding="utf-8")
    assert svg_text.startswith("<svg") and 'data-id="m:transformer#0"' in svg_text and ".g-node" in svg_text
    assert svg_info.value.suggested_filename == "tiny_gpt2-graph.svg"
    with page.expect_download() as png_info:
        page.click("#export-png")
    data = Path(png_info.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_params_toggle_and_hooks_capture(page: Page, gpt2_server: LiveServer) -> None:
    open_graph(page, gpt2_server)
    relaid(page, lambda: page.check("#show-params"))
    relaid(page, lambda: node(page, "m:lm_head#0").locator(".toggle").click())
    # lm_head reads the embedding matrix it is tied to
    expect(page.locator('#viewport .g-node[data-kind="param"]', has_text="transformer.wte.weight")).to_have_count(1)
    relaid(page, lambda: page.select_option("#capture-mode", "hooks"))
    expect(page.locator("#capture-badge")).to_have_text("forward hooks")


@pytest.fixture(scope="module")
def wide_server(live_server_factory: Callable[[Settings], LiveServer]) -> LiveServer:
    return live_server_factory(Settings(specs=["tests.fixtures.graph_models:long_chain"]))


def test_a_view_too_wide_to_draw_comes_in_parts_that_expand_in_place(page: Page, wide_server: LiveServer) -> None:
    # 700 blocks in one Sequential: drawn at once, ELK would take many seconds (and overflow
    # its stack from about 3,000 nodes); cut into 7 parts of 100, expanded one at a time.
    page.goto(f"{wide_server.url}/models/long_chain/graph")
    page.wait_for_function(READY, timeout=120_000)
    expect(page.locator("#graph-error")).to_be_hidden()
    assert page.evaluate("document.getElementById('graph-panel').dataset.nodes") == "9"  # 7 parts + in + out
    part = node(page, "m:#0/300-400")
    expect(part).to_have_class("g-node kind-module expandable part")
    expect(part).to_contain_text("300 … 399")
    expect(part).to_contain_text("100 \u00d7 Sequential")
    part.click()
    expect(page.locator("#side-title")).to_have_text("300 … 399")
    expect(page.locator("#side-body")).to_contain_text("too wide to draw at once")
    relaid(page, lambda: part.locator(".toggle").click())
    expect(page.locator('#viewport .g-group.part[data-id="m:#0/300-400"]')).to_have_count(1)
    expect(page.locator('#viewport .g-node[data-kind="module"]:not(.part)')).to_have_count(100)
    # the tensor into the open part reaches its first block; its last block feeds the next part
    expect(page.locator('#viewport .g-edge[data-source="m:#0/200-300"][data-target="m:300#0"]')).to_have_count(1)
    expect(page.locator('#viewport .g-edge[data-source="m:399#0"][data-target="m:#0/400-500"]')).to_have_count(1)
    relaid(page, lambda: page.click("#collapse-all"))
    # search opens the part a module sits in, then the module
    page.fill("#graph-search", "612.0")
    item = page.locator('#search-results li[data-id="m:612.0#0"]')
    relaid(page, lambda: item.click())
    expect(node(page, "m:612.0#0")).to_have_class("g-node kind-module expandable hl-focus selected")
    expect(page.locator('#viewport .g-group[data-id="m:#0/600-700"]')).to_have_count(1)
