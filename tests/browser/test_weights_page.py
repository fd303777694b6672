"""The Weights page in a real Chromium: histogram drawn from server bins, bins, log axis, overview click."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems


def api(server: LiveServer, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(server.url + path) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def wait_chart(page: Page, tensor: str, bins: int) -> None:
    page.wait_for_function(
        "([t, b]) => { const c = document.getElementById('hist-chart');"
        " return c.dataset.ready === '1' && c.dataset.tensor === t && c.dataset.bins === String(b); }",
        arg=[tensor, bins],
    )


def test_linked_tensor_opens_its_histogram_and_bins_change(
    page: Page, live_server: LiveServer
) -> None:
    name = "blocks.layers.0.linear1.weight"
    page.goto(f"{live_server.url}/models/tinytransformerlm/weights?tensor={name}")
    wait_chart(page, name, 64)
    drawn = page.evaluate("document.getElementById('hist-chart').data[0].y")
    truth = api(live_server, f"/api/models/tinytransformerlm/histogram?tensor={name}&bins=64")
    assert drawn == truth["counts"]
    expect(page.locator('#stats-table tr[data-stat="std"] td')).not_to_have_text("—")
    expect(page.locator("#hist-note")).to_contain_text("Exact counts")

    page.fill("#bins", "10")
    wait_chart(page, name, 10)
    assert page.evaluate("document.getElementById('hist-chart').data[0].y.length") == 10
    assert "bins=10" in page.url

    page.check("#log-y")
    page.wait_for_function("document.getElementById('hist-chart').layout.yaxis.type === 'log'")

    page.select_option("#tensor-select", "norm.weight")
    wait_chart(page, "norm.weight", 10)
    expect(page.locator('#stats-table tr[data-stat="mean"] td')).to_have_text("1")


def test_overview_click_opens_that_tensor(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/models/smallcnn/weights")
    page.wait_for_function("document.getElementById('overview-chart').dataset.ready === '1'")
    wait_chart(page, "features.0.0.weight", 64)
    names = page.evaluate("document.getElementById('overview-chart').data[2].customdata")
    assert names[0] == "features.0.0.weight" and "classifier.2.weight" in names
    # Plotly's click event, as a user click on the classifier's point would send it
    page.evaluate(
        "() => { const c = document.getElementById('overview-chart'); const t = c.data[2];"
        " const i = t.customdata.indexOf('classifier.2.weight');"
        " c.emit('plotly_click', {points: [{customdata: t.customdata[i], pointIndex: i}]}); }"
    )
    wait_chart(page, "classifier.2.weight", 64)
    expect(page.locator("#tensor-select")).to_have_value("classifier.2.weight")


def test_unknown_tensor_is_a_readable_404_page(
    page: Page, live_server: LiveServer, page_problems: PageProblems
) -> None:
    r = page.goto(f"{live_server.url}/models/smallcnn/weights?tensor=nope")
    assert r is not None and r.status == 404
    expect(page.locator(".error-page")).to_contain_text("no parameter or buffer named 'nope'")
    page_problems.console_errors.clear()  # the 404 document itself is logged by Chromium
