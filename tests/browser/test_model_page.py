"""The structure page in a real Chromium: tree, search, flat view, lint, tables."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def open_model(page: Page, server: LiveServer, model_id: str) -> None:
    page.goto(f"{server.url}/models/{model_id}")
    page.wait_for_function("document.getElementById('tree').dataset.ready === '1'")
    page.wait_for_function("document.getElementById('params-table').dataset.ready === '1'")


def test_index_lists_every_example(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    cards = page.locator(".model-card")
    expect(cards).to_have_count(7)
    expect(page.locator('[data-model="tinytransformerlm"]')).to_contain_text("120,576")


def test_expand_node_loads_children_lazily(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "smallcnn")
    features = page.locator('li.node[data-path="features"]')
    expect(features).to_be_visible()
    # depth=2 was loaded up front: features' children exist but are collapsed
    block = page.locator('li.node[data-path="features.0"]')
    expect(block).to_be_hidden()
    features.locator("> .toggle").click()
    expect(block).to_be_visible()
    # features.0's own children were not loaded yet: expanding fetches them
    conv = page.locator('li.node[data-path="features.0.0"]')
    expect(conv).to_have_count(0)
    block.locator("> .toggle").click()
    expect(conv).to_be_visible()
    expect(conv).to_contain_text("Conv2d")
    expect(conv).to_contain_text("3, 16, kernel_size=(3, 3)")
    expect(conv.locator(".node-count")).to_have_text("432 / 432")
    # a tensor in the tree opens its histogram
    conv.locator("> .node-label .node-tensors a", has_text="weight").click()
    # the Weights page adds its own state (bins, log axis) to the URL, maybe before "load"
    page.wait_for_url(re.compile(r".*/models/smallcnn/weights\?tensor=features\.0\.0\.weight(&.*)?$"))


def test_search_by_class_shows_matches_with_ancestors(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "smallcnn")
    page.fill("#tree-search", "batchnorm")
    page.wait_for_selector("li.node.match")
    matches = page.locator("li.node.match")
    expect(matches).to_have_count(3)
    expect(page.locator(".search-info")).to_contain_text("3 match")
    expect(page.locator('li.node.match[data-path="features.2.1"]')).to_be_visible()


def test_lint_finding_is_shown_with_its_fix(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "listvsmodulelist")
    finding = page.locator('.finding[data-kind="plain_container"]')
    expect(finding).to_have_count(1)
    expect(finding).to_contain_text("plain_list.layers")
    expect(finding).to_contain_text("nn.ModuleList")
    # the module holding the mistake is flagged in the tree too
    expect(page.locator('li.node[data-path="plain_list"] > .node-label .badge.warn')).to_have_text("lint")
    expect(page.locator('li.node[data-path="module_list"] > .node-label .badge.warn')).to_have_count(0)
    page.goto(f"{live_server.url}/models/tensorvsparameter")
    tensor = page.locator('.finding[data-kind="unregistered_tensor"]')
    expect(tensor).to_contain_text("with_tensor.scale")
    expect(tensor).to_contain_text("register_buffer")


def test_switch_to_flat_named_modules_view(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "conv_bn_block")
    page.click("#view-flat")
    page.wait_for_function("document.getElementById('flat').dataset.ready === '1'")
    expect(page.locator("#tree")).to_be_hidden()
    rows = page.locator("#flat-table tbody tr")
    expect(rows).to_have_count(4)  # the Sequential itself + conv, bn, relu
    expect(page.locator(".flat-explain")).to_contain_text("children(): 3")
    expect(page.locator(".flat-explain")).to_contain_text("named_modules(): 4")
    page.click("#view-tree")
    expect(page.locator("#tree")).to_be_visible()


def test_the_tree_follows_a_search_typed_in_the_flat_view(page: Page, live_server: LiveServer) -> None:
    # The text stayed in the box while the tree came back unfiltered (issue 8).
    open_model(page, live_server, "conv_bn_block")
    page.click("#view-flat")
    page.wait_for_function("document.getElementById('flat').dataset.ready === '1'")
    page.fill("#tree-search", "BatchNorm")  # a Sequential: paths 0 (conv), 1 (bn), 2 (relu)
    expect(page.locator("#flat-table tbody tr")).to_have_count(1)
    page.click("#view-tree")
    expect(page.locator("#tree .search-info")).to_have_text("1 match(es)")
    expect(page.locator('#tree li.node[data-path="1"]')).to_be_visible()
    expect(page.locator('#tree li.node[data-path="0"]')).to_have_count(0)
    # cleared in the flat view: the whole tree again
    page.click("#view-flat")
    page.fill("#tree-search", "")
    page.click("#view-tree")
    expect(page.locator('#tree li.node[data-path="0"]')).to_be_visible()
    expect(page.locator("#tree .search-info")).to_have_count(0)
    # expand-all shows the whole tree, so it empties the box
    page.fill("#tree-search", "ReLU")
    expect(page.locator("#tree .search-info")).to_have_text("1 match(es)")
    page.click("#expand-all")
    expect(page.locator('#tree li.node[data-path="0"]')).to_be_visible()
    expect(page.locator("#tree-search")).to_have_value("")


def test_parameter_table_sorts_and_marks_tied_weights(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "tinytransformerlm")
    # 29 names, as the card's 28 tensors: lm_head.weight is tok_emb.weight
    expect(page.locator("#params-count")).to_have_text("(29 names, 28 tensors)")
    expect(page.locator("#card-params")).to_contain_text("28 tensors")
    tied = page.locator('#params-table tr[data-name="lm_head.weight"]')
    expect(tied).to_contain_text("tied: tok_emb.weight")
    expect(page.locator('li.node[data-path="lm_head"] > .node-label')).to_contain_text("tied: weight = tok_emb.weight")
    page.click('#params-table th[data-key="numel"]')
    page.click('#params-table th[data-key="numel"]')  # descending
    first = page.locator("#params-table tbody tr").first
    expect(first).to_have_attribute("data-name", re.compile(r"^(tok_emb|lm_head)\.weight$"))
    buf = page.locator('#buffers-table tr[data-name="causal_mask"]')
    expect(buf).to_contain_text("non-persistent")
    page.fill("#params-filter", "no-such-name")
    expect(page.locator("#params-table tbody tr.empty")).to_have_text('no name contains "no-such-name"')
    expect(page.locator("#params-count")).to_have_text("(0 of 29 names)")


def test_empty_tables_say_so(page: Page, live_server: LiveServer) -> None:
    open_model(page, live_server, "twolayernet")
    expect(page.locator("#buffers-table tbody tr.empty")).to_have_text("this model has no buffers")
    expect(page.locator("#params-count")).to_have_text("(4)")


def test_unknown_model_page_is_a_readable_404(page: Page, live_server: LiveServer, page_problems: object) -> None:
    response = page.goto(f"{live_server.url}/models/nope")
    assert response is not None and response.status == 404
    expect(page.locator(".error-box")).to_contain_text("no model with id 'nope'")
    page_problems.console_errors.clear()  # type: ignore[attr-defined]  # the 404 itself is logged


def test_a_20000_module_model_stays_usable(page: Page, live_server_factory) -> None:
    from torchscope.settings import Settings

    server = live_server_factory(Settings(specs=["tests.fixtures.models:wide_model"]))
    open_model(page, server, "wide_model")
    expect(page.locator("#card-modules .card-value")).to_have_text("19,997")
    # the root's 4,999 children are rendered 500 at a time, their subtrees not at all until asked for
    expect(page.locator('li.node[data-path="0"]')).to_be_visible()
    assert page.locator("li.node[data-path]").count() == 501
    more = page.locator("li.more-children button")
    expect(more).to_contain_text("Show 500 more of 4499 remaining")
    more.click()
    expect(page.locator('li.node[data-path="999"]')).to_be_visible()
    page.locator('li.node[data-path="0"] > .toggle').click()
    expect(page.locator('li.node[data-path="0.1"]')).to_contain_text("LayerNorm")
    page.fill("#tree-search", "4998.1")
    expect(page.locator('li.node.match[data-path="4998.1"]')).to_be_visible()
    expect(page.locator("#params-count")).to_have_text("(19,996)")


def test_meta_device_model_page(page: Page, live_server_factory) -> None:
    from torchscope.settings import Settings

    server = live_server_factory(Settings(specs=["torchscope.examples:TinyTransformerLM"], meta=True))
    open_model(page, server, "tinytransformerlm")
    expect(page.locator(".model-head .badge")).to_have_text("meta device")
    expect(page.locator("#card-params .card-value")).to_have_text("120,576")
    expect(page.locator('#params-table tr[data-name="tok_emb.weight"]')).to_contain_text("meta")


def test_openapi_docs_page_works_offline(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/docs")
    # Swagger UI rendered the operations from /openapi.json with its vendored bundle (no CDN)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/api/models/{model_id}/tree"]')).to_have_count(1)
    # and links back to the dashboard
    page.click("#back a")
    expect(page.locator("h1")).to_have_text("Models")


def test_slow_work_shows_a_busy_indicator_with_elapsed_time(page: Page, live_server: LiveServer) -> None:
    held = []  # the parameter table of a big model takes a while: hold its request to simulate that
    page.route("**/api/models/smallcnn/parameters", lambda route: held.append(route))
    page.goto(f"{live_server.url}/models/smallcnn")
    busy = page.locator("#busy")
    expect(busy).to_be_visible()
    expect(busy).to_contain_text("working…")
    expect(busy).to_have_text(re.compile(r"working… \d+\.\d s"))
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function("document.getElementById('params-table').dataset.ready === '1'")
    expect(busy).to_be_hidden()


def test_frozen_layers_are_marked_in_the_tree(page: Page, live_server_factory) -> None:
    from torchscope.settings import Settings

    server = live_server_factory(Settings(specs=["tests.fixtures.models:PartlyFrozen"]))
    open_model(page, server, "partlyfrozen")
    expect(page.locator("#card-frozen .card-value")).to_have_text("84")
    expect(page.locator('li.node[data-path=""] > .node-label .badge.frozen')).to_have_text("frozen 84 of 98")
    expect(page.locator('li.node[data-path="backbone"] > .node-label .badge.frozen')).to_have_text("frozen")
    expect(page.locator('li.node[data-path="head"] > .node-label .badge.frozen')).to_have_count(0)
    expect(page.locator('#params-table tr[data-name="backbone.0.weight"]')).to_have_class("frozen")
