"""The Forward tab and the tree's forward columns, in a real Chromium."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from torchscope.settings import Settings


@pytest.fixture(scope="module")
def forward_server(live_server_factory: Callable[[Settings], LiveServer]) -> LiveServer:
    return live_server_factory(Settings(specs=[
        "torchscope.examples:SmallCNN", "tests.fixtures.models:ShapeBug", "tests.fixtures.models:KwargsOnly",
        "tests.fixtures.models:ManyCalls",
    ]))  # fmt: skip


def open_forward(page: Page, server: LiveServer, model_id: str, state: str = "ok") -> None:
    page.goto(f"{server.url}/models/{model_id}/forward")
    page.wait_for_function(f"document.getElementById('forward').dataset.state === '{state}'")


def run_inputs(page: Page, text: str, state: str = "ok") -> None:
    page.fill("#inputs-editor", text)
    page.click("#run-forward")
    page.wait_for_function(f"document.getElementById('forward').dataset.state === '{state}'")


def test_forward_tab_shows_inferred_inputs_totals_and_calls(page: Page, forward_server: LiveServer) -> None:
    open_forward(page, forward_server, "smallcnn")
    expect(page.locator(".tabs .tab.active")).to_have_text("Forward")
    expect(page.locator("#inputs-source")).to_have_text("inferred")
    expect(page.locator("#inputs-note")).to_contain_text("features.0.0 = Conv2d takes 3 channel(s)")
    expect(page.locator("#total-flops .card-value")).to_have_text("275M")
    expect(page.locator("#total-flops .detail")).to_contain_text("274,564,352")
    expect(page.locator("#total-activation_bytes details")).to_contain_text("saved tensors")
    expect(page.locator("#calls-count")).to_have_text("(21)")
    conv = page.locator('#calls-table tr[data-path="features.0.0"]')
    expect(conv).to_contain_text("Conv2d")
    expect(conv).to_contain_text("[1, 16, 224, 224]")
    expect(conv.locator("td").nth(6)).to_have_text("43.4M")
    # sort by own FLOPs, largest first: a convolution leads
    page.click('#calls-table th[data-key="flops"]')
    expect(page.locator("#calls-table tbody tr[data-index]").first).to_contain_text("Conv2d")
    # depth and filter narrow the rows; a click shows the whole structure of a call
    page.select_option("#calls-depth", "1")
    expect(page.locator("#calls-count")).to_have_text("(3 of 21)")
    page.select_option("#calls-depth", "")
    page.fill("#calls-filter", "classifier")
    expect(page.locator("#calls-count")).to_have_text("(4 of 21)")
    page.locator('#calls-table tr[data-path="classifier.2"]').click()
    expect(page.locator("#detail-title")).to_have_text("classifier.2 · Linear · call 0")
    expect(page.locator("#detail-outputs")).to_contain_text('"shape": [\n    1,\n    10\n  ]')


def test_export_markdown_for_an_issue(page: Page, forward_server: LiveServer) -> None:
    open_forward(page, forward_server, "smallcnn")
    page.click("#export-markdown")
    page.wait_for_function("document.getElementById('export-output').dataset.ready === '1'")
    text = page.locator("#export-output").input_value()
    assert "| `features.0.0` | Conv2d | 0 | [1, 3, 224, 224] | [1, 16, 224, 224] | 432 | 43.4M | 43.4M |" in text.replace("&nbsp;", "")
    assert "**Total FLOPs**: 274,564,352 (275M)" in text
    expect(page.locator("#export-download")).to_have_attribute("download", "smallcnn-forward.md")


def test_edited_inputs_rerun_and_reach_the_tree(page: Page, forward_server: LiveServer) -> None:
    open_forward(page, forward_server, "smallcnn")
    run_inputs(page, "[[2, 3, 32, 32]]")
    expect(page.locator("#inputs-source")).to_have_text("given")
    expect(page.locator('#calls-table tr[data-path=""]')).to_contain_text("[2, 10]")
    expect(page.locator("#total-flops .card-value")).to_have_text("11.2M")
    # the structure page's tree shows the same run: output shapes and FLOPs per node
    page.click(".tabs a:has-text('Structure')")
    page.wait_for_function("document.getElementById('tree').dataset.forward === 'ready'")
    features = page.locator('li.node[data-path="features"] > .node-fwd')
    expect(features.locator(".fwd-out")).to_have_text("[2, 64, 1, 1]")
    expect(features.locator(".fwd-total")).to_contain_text("11.2M")
    expect(page.locator("#tree-fwd-note")).to_contain_text("[2, 3, 32, 32] (given)")
    bar = features.locator(".share > span")
    assert float((bar.get_attribute("style") or "").split(":")[1].rstrip("%;")) > 99.9
    classifier = page.locator('li.node[data-path="classifier"] > .node-fwd')
    expect(classifier.locator(".fwd-out")).to_have_text("[2, 10]")
    # sortable: ascending by subtree FLOPs puts the classifier before the features
    names = page.locator("ul.root > li.node > ul.children > li.node")
    expect(names.first).to_have_attribute("data-path", "features")
    page.click('#tree-fwd-head button[data-key="flops_total"]')  # descending
    page.click('#tree-fwd-head button[data-key="flops_total"]')  # ascending
    expect(names.first).to_have_attribute("data-path", "classifier")
    # nodes loaded later are decorated (and sorted) too
    page.locator('li.node[data-path="features"] > .toggle').click()
    page.locator('li.node[data-path="features.0"] > .toggle').click()
    expect(page.locator('li.node[data-path="features.0.0"] > .node-fwd .fwd-own')).to_have_text("1.77M")  # 2 x 16 x 32 x 32 outputs x 27 multiply-adds x 2


def test_a_shape_bug_is_shown_where_it_happens(page: Page, forward_server: LiveServer, page_problems: object) -> None:
    open_forward(page, forward_server, "shapebug")
    run_inputs(page, "[[1, 20, 40]]", state="failed")
    page_problems.console_errors.clear()  # type: ignore[attr-defined]  # the 422 itself is logged
    expect(page.locator("#failure")).to_be_visible()
    expect(page.locator("#failure-path")).to_have_text("fc1")
    expect(page.locator("#failure-class")).to_have_text("Linear, call 0")
    expect(page.locator("#failure-inputs")).to_have_text("[1, 800]")
    expect(page.locator("#failure-message")).to_have_text("RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x800 and 784x10)")
    expect(page.locator("#calls-table tr.failed")).to_have_count(2)
    expect(page.locator('#calls-table tr[data-path="flatten"]')).to_contain_text("[1, 800]")
    # the structure page's tree says why it has no shapes (and logs no error)
    page.click(".tabs a:has-text('Structure')")
    page.wait_for_function("document.getElementById('tree').dataset.forward === 'failed'")
    expect(page.locator("#tree-fwd-note")).to_contain_text("No output shapes or FLOPs: forward failed at `fc1`")


def test_no_inputs_asks_for_them(page: Page, forward_server: LiveServer, page_problems: object) -> None:
    open_forward(page, forward_server, "kwargsonly", state="no-inputs")
    page_problems.console_errors.clear()  # type: ignore[attr-defined]  # the 409 itself is logged
    expect(page.locator("#inputs-error")).to_contain_text("no example inputs for KwargsOnly")
    expect(page.locator("#inputs-error")).to_have_attribute("data-status", "409")
    run_inputs(page, "{not json", state="no-inputs")
    expect(page.locator("#inputs-error")).to_contain_text("not valid JSON")
    run_inputs(page, '{"kwargs": {"x": {"shape": [2, 5], "dtype": "flaot32"}}}', state="error")
    page_problems.console_errors.clear()  # type: ignore[attr-defined]
    expect(page.locator("#inputs-error")).to_contain_text("inputs.kwargs.x.dtype: unknown dtype 'flaot32'")
    run_inputs(page, '{"kwargs": {"x": {"shape": [2, 5]}, "mask": {"shape": [2]}}}')
    expect(page.locator('#calls-table tr[data-path="proj"]')).to_contain_text("[2, 5]")


def test_thousands_of_calls_are_virtualised(page: Page, forward_server: LiveServer) -> None:
    open_forward(page, forward_server, "manycalls")
    expect(page.locator("#calls-count")).to_have_text("(5,002)")
    rows = page.locator("#calls-table tbody tr[data-index]")
    assert rows.count() < 100  # only the rows in view exist
    page.locator("#calls-scroll").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(page.locator('#calls-table tr[data-index="5001"]')).to_contain_text("Linear")
    assert rows.count() < 100
    page.click('#calls-table th[data-key="flops"]')
    page.locator("#calls-scroll").evaluate("el => el.scrollTop = 0")
    expect(rows.first).to_have_attribute("data-path", "fc")
