"""The init lab in a real Chromium: build a plan, preview overlays, refusals, apply, reset."""

from __future__ import annotations

import json
import urllib.request

import pytest
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
    # "now" is the served weights: a step line over the current histogram's edges, as a density
    # (both histograms have their own bin widths; raw counts on one axis made "now" look ~4x too low)
    now_x, now_y = first.evaluate("c => [c.data[1].x, c.data[1].y.slice(0, -1)]")
    assert now_x == original["edges"]
    n = sum(original["counts"])
    widths = [b - a for a, b in zip(original["edges"], original["edges"][1:], strict=False)]
    assert now_y == pytest.approx([c / (n * w) for c, w in zip(original["counts"], widths, strict=True)])
    for i in range(3):  # now, after and theory are all densities: each integrates to 1
        x, y, w = first.evaluate(f"c => [c.data[{i}].x, c.data[{i}].y, c.data[{i}].width || null]")
        if i == 0:
            assert sum(a * b for a, b in zip(y, w, strict=True)) == pytest.approx(1)
        elif i == 1:
            assert sum(yy * (b - a) for yy, a, b in zip(y, x, x[1:], strict=False)) == pytest.approx(1)
    expect(page.locator("#preview-panel")).to_contain_text("densities")
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

    # the plan is remembered while the model is modified: navigate away and back
    page.goto(base)
    expect(page.locator("#modified-badge")).to_be_visible()
    page.goto(live_server.url + "/")
    expect(page.locator('.model-card[data-model="twolayernet"] .badge.warn', has_text="modified")).to_be_visible()
    page.goto(base + "/init")
    page.wait_for_function("document.getElementById('plan-panel').dataset.ready === '1'")
    expect(page.locator("#applied-box")).to_be_visible()
    expect(page.locator("#applied-list li")).to_have_count(1)
    expect(page.locator("#applied-list li").first).to_contain_text("seed 7: Linear · weight → xavier_uniform_(gain=2)")
    expect(page.locator(".rule")).to_have_count(2)
    expect(page.locator(".rule").first.locator("input.match")).to_have_value("Linear")
    expect(page.locator("#seed")).to_have_value("7")

    page.click("#snippet-btn")
    expect(page.locator("#snippet")).to_contain_text(
        "def weights_init(model: nn.Module, seed: int = 7)"
    )

    page.click("#reset")
    expect(page.locator("#status")).to_contain_text("restored bit for bit")
    expect(page.locator("#applied-box")).to_be_hidden()
    assert (
        api(live_server, "/api/models/twolayernet/histogram?tensor=fc1.weight&bins=8") == original
    )


def test_primary_buttons_keep_their_label_on_hover(page: Page, live_server: LiveServer) -> None:
    # The generic button:hover painted a light grey under the primary button's white label (issue 8).
    page.goto(f"{live_server.url}/models/twolayernet/init")
    page.wait_for_function("document.getElementById('plan-panel').dataset.ready === '1'")
    page.hover("#preview")
    color, background = page.eval_on_selector(
        "#preview", "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
    )
    assert color == "rgb(255, 255, 255)"
    assert background == "rgb(37, 99, 235)"  # --accent-2 (darkened by a filter, never replaced)


def test_tensor_names_are_suggested_from_the_server(page: Page, live_server: LiveServer) -> None:
    # A model can have 50,000 tensors: the page inlines only module classes, names come as you type.
    page.goto(f"{live_server.url}/models/tinytransformerlm/init")
    page.wait_for_function("document.getElementById('plan-panel').dataset.ready === '1'")
    assert page.locator('#match-options option[data-kind="name"]').count() == 0
    assert page.locator('#match-options option[value="TransformerEncoderLayer"]').count() == 1
    page.locator(".rule").first.locator("input.match").fill("tok_emb")
    page.wait_for_function("document.getElementById('match-options').dataset.query === 'tok_emb'")
    names = page.eval_on_selector_all('#match-options option[data-kind="name"]', "os => os.map(o => o.value)")
    assert names == ["tok_emb.weight", "lm_head.weight"]  # the tied alias too
