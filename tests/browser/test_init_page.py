"""The init lab in a real Chromium: build a plan, preview overlays, refusals, apply, reset."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems


def api(server: LiveServer, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(server.url + path) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_preview_apply_reset(
    page: Page, live_server: LiveServer, page_problems: PageProblems
) -> None:
    base = f"{live_server.url}/models/twolayernet"
    original = api(live_server, "/api/models/twolayernet/histogram?tensor=fc1.weight&bins=8")
    page.goto(base + "/init")
    page.wait_for_function("document.getElementById('plan-panel').dataset.ready === '1'")
    rule = page.locator(".rule").first
    rule.locator("input.match").fill("Linear")
    rule.locator("select.tensor").select_option("weight")
    rule.locator("select.fn").select_option("xavier_uniform_")
    rule.locator('[data-arg="gain"]').fill("2")
    page.click("#add-rule")  # second rule defaults to *.bias -> zeros_
    page.fill("#seed", "7")
    page.fill("#bins", "8")

    page.click("#preview")
    page.wait_for_function("document.getElementById('previews').dataset.ready === '1'")
    items = page.locator(".preview-item")
    expect(items).to_have_count(4)
    first = page.locator('.preview-item[data-tensor="fc1.weight"] .chart')
    traces = first.evaluate("c => c.data.map(t => t.name)")
    assert traces == ["after", "now", "theory"]
    # "now" is the served weights: a step line over the current histogram's edges
    assert first.evaluate("c => c.data[1].y.slice(0, -1)") == original["counts"]
    expect(page.locator('.preview-item[data-tensor="fc1.weight"]')).to_contain_text("U(")
    # preview changed nothing
    assert (
        api(live_server, "/api/models/twolayernet/histogram?tensor=fc1.weight&bins=8") == original
    )

    # a refused plan: the 422 is shown on the page, naming the rule
    page.locator(".rule").nth(1).locator("select.fn").select_option("orthogonal_")
    page.click("#preview")
    page.wait_for_function("document.getElementById('previews').dataset.ready === 'error'")
    expect(page.locator("#plan-error")).to_contain_text("rule 1")
    expect(page.locator("#plan-error")).to_contain_text("fc1.bias")
    expect(page.locator('.rule[data-index="1"]')).to_have_class("rule bad")
    page_problems.console_errors.clear()  # Chromium logs the 422 response itself
    page.locator(".rule").nth(1).locator("select.fn").select_option("zeros_")

    page.click("#apply")
    expect(page.locator("#status")).to_have_attribute("data-modified", "1")
    expect(page.locator("#status")).to_contain_text("4 tensor(s) changed")
    after = api(live_server, "/api/models/twolayernet/histogram?tensor=fc1.bias&bins=8")
    assert after["stats"]["zeros"] == after["numel"]

    page.click("#snippet-btn")
    expect(page.locator("#snippet")).to_contain_text(
        "def weights_init(model: nn.Module, seed: int = 7)"
    )

    page.click("#reset")
    expect(page.locator("#status")).to_contain_text("restored bit for bit")
    assert (
        api(live_server, "/api/models/twolayernet/histogram?tensor=fc1.weight&bins=8") == original
    )
