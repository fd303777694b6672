"""The Weights page in a real Chromium: histogram drawn from server bins, bins, log axis in the URL, picker,
overview buckets and clicks, meta-device explanation, and a 20,000-module model."""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from torchscope.settings import Settings


def api(server: LiveServer, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(server.url + path) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def wait_chart(page: Page, tensor: str, bins: int) -> None:
    page.wait_for_function(
        "([t, b]) => { const c = document.getElementById('hist-chart');"
        " return c.dataset.ready === '1' && c.dataset.tensor === t && c.dataset.bins === String(b); }",
        arg=[tensor, bins],
    )


def wait_overview(page: Page) -> None:
    page.wait_for_function("document.getElementById('overview-chart').dataset.ready === '1'")


def test_linked_tensor_opens_its_histogram_and_state_lives_in_the_url(page: Page, live_server: LiveServer) -> None:
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

    # "2.5" is refused in words, and nothing is redrawn with 2 bins
    page.fill("#bins", "2.5")
    page.wait_for_function("document.getElementById('hist-chart').dataset.ready === 'invalid'")
    expect(page.locator("#hist-error")).to_contain_text("bins must be a whole number from 1 to 1024")
    assert page.evaluate("document.getElementById('hist-chart').data[0].y.length") == 10
    page.fill("#bins", "10")
    wait_chart(page, name, 10)
    expect(page.locator("#hist-error")).to_be_hidden()

    page.check("#log-y")
    page.wait_for_function("document.getElementById('hist-chart').layout.yaxis.type === 'log'")
    assert "log=1" in page.url
    # a reload (or a shared link) comes back to the same view
    page.reload()
    wait_chart(page, name, 10)
    assert page.evaluate("document.getElementById('hist-chart').layout.yaxis.type") == "log"
    expect(page.locator("#log-y")).to_be_checked()


def test_picker_searches_on_the_server_and_opens_the_choice(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/models/tinytransformerlm/weights")
    # opens on the first tensor with a spread of values (pos_emb is all zeros, causal_mask a buffer)
    wait_chart(page, "tok_emb.weight", 64)
    expect(page.locator("#tensor-search")).to_have_value("tok_emb.weight")
    page.click("#tensor-search")
    page.keyboard.type("layers.1 norm weight")
    expect(page.locator("#tensor-list li[role=option]")).to_have_count(2)
    expect(page.locator("#tensor-list li[role=option]").first).to_have_attribute(
        "data-name", "blocks.layers.1.norm1.weight"
    )
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_chart(page, "blocks.layers.1.norm2.weight", 64)
    expect(page.locator("#tensor-list")).to_be_hidden()
    expect(page.locator('#stats-table tr[data-stat="mean"] td')).to_have_text("1")
    assert "tensor=blocks.layers.1.norm2.weight" in page.url
    # a tied alias finds its tensor
    page.click("#tensor-search")
    page.keyboard.type("lm_head")
    expect(page.locator("#tensor-list li[role=option]")).to_have_count(1)
    expect(page.locator("#tensor-list li[role=option]")).to_contain_text("= lm_head.weight")


def test_overview_draws_buckets_with_buffers_in_the_legend_and_clicks_open_tensors(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/models/smallcnn/weights")
    wait_overview(page)
    wait_chart(page, "features.0.0.weight", 64)
    names = page.evaluate(
        "document.getElementById('overview-chart').data.map(t => t.name)"
    )
    assert names == [
        "parameters: min / max", "parameters: min / max", "parameters: mean ± std",
        "buffers: mean ± std", "parameters: std (right axis)",
    ]
    # the std axis has round ticks from 0
    tick0, dtick = page.evaluate(
        "(() => { const a = document.getElementById('overview-chart').layout.yaxis2; return [a.tick0, a.dtick]; })()"
    )
    assert tick0 == 0 and round(dtick / 10 ** math.floor(math.log10(dtick)), 6) in (1, 2, 2.5, 5)
    # Plotly's click event, as a user click on the classifier's point would send it
    page.evaluate(
        "() => { const c = document.getElementById('overview-chart'); const t = c.data[2];"
        " const i = t.customdata.findIndex(d => d.name === 'classifier.2.weight');"
        " c.emit('plotly_click', {points: [{customdata: t.customdata[i], pointIndex: i}]}); }"
    )
    wait_chart(page, "classifier.2.weight", 64)
    expect(page.locator("#tensor-search")).to_have_value("classifier.2.weight")


def test_unknown_tensor_is_a_readable_404_page(
    page: Page, live_server: LiveServer, page_problems: PageProblems
) -> None:
    r = page.goto(f"{live_server.url}/models/smallcnn/weights?tensor=nope")
    assert r is not None and r.status == 404
    expect(page.locator(".error-page")).to_contain_text("no parameter or buffer named 'nope'")
    page_problems.console_errors.clear()  # the 404 document itself is logged by Chromium


def test_meta_model_explains_itself_without_errors(
    page: Page, live_server_factory: Callable[[Settings], LiveServer]
) -> None:
    server = live_server_factory(Settings(specs=["torchscope.examples:TwoLayerNet"], meta=True))
    page.goto(f"{server.url}/models/twolayernet/weights")
    expect(page.locator("#no-values")).to_contain_text("meta device")
    expect(page.locator("#no-values a", has_text="structure page")).to_have_attribute("href", "/models/twolayernet")
    assert page.locator(".error-box:visible").count() == 0 and page.locator("select").count() == 0
    page.goto(f"{server.url}/models/twolayernet/init")
    expect(page.locator("#meta-notice")).to_contain_text("no values")
    assert page.locator(".error-box:visible").count() == 0


def test_twenty_thousand_modules_show_data(
    page: Page, live_server_factory: Callable[[Settings], LiveServer]
) -> None:
    server = live_server_factory(Settings(specs=["tests.fixtures.models:wide_model"]))
    page.goto(f"{server.url}/models/wide_model/weights")
    wait_overview(page)
    wait_chart(page, "0.0.weight", 64)
    box = page.locator("#overview-chart")
    assert box.get_attribute("data-grouping") == "modules"
    points = page.evaluate("document.getElementById('overview-chart').data[2].x.length")
    ticks = page.evaluate("document.getElementById('overview-chart').layout.xaxis.tickvals.length")
    assert 20 <= points <= 400 and ticks <= 40
    expect(page.locator("#overview-info")).to_contain_text("19,996 tensors")
    # zooming in (a drag on the chart sends this relayout) ends at single tensors
    page.evaluate("Plotly.relayout('overview-chart', {'xaxis.range[0]': 99.6, 'xaxis.range[1]': 140.2})")
    page.wait_for_function(
        "(() => { const c = document.getElementById('overview-chart');"
        " return c.dataset.ready === '1' && c.dataset.start === '100' && c.dataset.grouping === 'tensor'; })()"
    )
    assert page.evaluate("document.getElementById('overview-chart').data[2].customdata[0].name") == "25.0.weight"
    page.click("#overview-all")
    page.wait_for_function(
        "(() => { const c = document.getElementById('overview-chart');"
        " return c.dataset.start === '0' && c.dataset.grouping === 'modules'; })()"
    )
