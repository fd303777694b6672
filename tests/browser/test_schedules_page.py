"""The LR schedule lab in a real Chromium: forms from the catalogue, live chart, errors, groups, export."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer

READY = "document.getElementById('chart').dataset.ready === '1'"


def draws(page: Page) -> int:
    return int(page.eval_on_selector("#chart", "c => Number(c.dataset.draws)"))


def wait_redraw(page: Page, before: int) -> None:
    page.wait_for_function(f"Number(document.getElementById('chart').dataset.draws) > {before}")


def lr_trace(page: Page, index: int = 0) -> list[float]:
    return page.eval_on_selector(
        "#chart", f"c => Array.from(c.data.filter(t => t.meta && t.meta.kind === 'lr')[{index}].y)"
    )


def test_edit_a_value_and_the_chart_changes(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/schedules")
    page.wait_for_function(READY)
    # The default: LinearLR warm-up for 5 epochs, then cosine; 50 epochs x 100 steps, drawn decimated.
    first = lr_trace(page)
    assert abs(first[0] - 0.01) < 1e-12  # 0.1 * start_factor 0.1
    expect(page.locator("#chart .main-svg").first).to_be_attached()
    # Forms are generated from the catalogue: the nested composition shows both children.
    expect(page.locator(".sched-node .sched-type")).to_have_count(3)
    before = draws(page)
    page.fill('[data-field="scheduler.args.schedulers[0].args.start_factor"]', "0.5")
    wait_redraw(page, before)
    second = lr_trace(page)
    assert abs(second[0] - 0.05) < 1e-12
    assert second != first
    # Switching the type regenerates the form from the catalogue and redraws.
    before = draws(page)
    page.select_option('[data-field="scheduler.type"]', "StepLR")
    wait_redraw(page, before)
    expect(page.locator('[data-field="scheduler.args.step_size"]').first).to_be_visible()
    # Log scale is a layout change only.
    page.check("#log-scale")
    page.wait_for_function("document.getElementById('chart').layout.yaxis.type === 'log'")


def test_bad_value_shows_the_422_next_to_the_field(page: Page, live_server: LiveServer, page_problems: object) -> None:
    page.goto(live_server.url + "/schedules")
    page.wait_for_function(READY)
    page.fill('[data-field="scheduler.args.schedulers[1].args.T_max"]', "0")
    box = page.locator("#preview-error")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Invalid input: ")
    expect(box).to_have_attribute("data-status", "422")
    expect(box).to_contain_text("T_max")
    expect(page.locator('.field.invalid[data-arg="scheduler.args.schedulers[1].args.T_max"]')).to_have_count(1)
    # The browser logs the failed request as a console error: expected here.
    page_problems.console_errors.clear()  # type: ignore[attr-defined]
    before = draws(page)
    page.fill('[data-field="scheduler.args.schedulers[1].args.T_max"]', "30")
    wait_redraw(page, before)
    expect(box).to_be_hidden()


def test_warnings_overlay_and_pinned_compare(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/schedules")
    page.wait_for_function(READY)
    before = draws(page)
    page.select_option('[data-field="scheduler.type"]', "CyclicLR")
    wait_redraw(page, before)
    expect(page.locator('#warnings li[data-code="momentum-cycled"]')).to_be_visible()
    # momentum on its own axis
    page.wait_for_function("document.getElementById('chart').data.some(t => t.yaxis === 'y2')")
    before = draws(page)
    page.click("#pin")
    wait_redraw(page, before)
    before = draws(page)
    page.select_option('[data-field="scheduler.type"]', "StepLR")
    wait_redraw(page, before)
    before = draws(page)
    page.check("#overlay-mistake")
    wait_redraw(page, before)
    kinds = page.eval_on_selector("#chart", "c => c.data.map(t => t.meta && t.meta.kind)")
    assert "mistake" in kinds
    names = page.eval_on_selector("#chart", "c => c.data.map(t => t.name)")
    assert any(n.startswith("pin 1 (CyclicLR)") for n in names)
    expect(page.locator('#warnings li[data-code="overlay-batch-mistake"]')).to_be_visible()


def test_model_page_groups_with_live_membership_and_export(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/models/twolayernet/schedules")
    page.wait_for_function(READY)
    expect(page.locator(".tab.active")).to_have_text("LR schedules")
    page.click("#add-group")
    page.fill('.group-row[data-group="1"] .group-match', "fc1.*")
    expect(page.locator('.mgroup[data-group-name="group1"] [data-count]')).to_have_attribute("data-count", "1")
    expect(page.locator('.mgroup[data-group-name="group1"] .names')).to_have_text("fc1.weight")
    expect(page.locator('.mgroup[data-group-name="no_decay"] .names')).to_contain_text("fc1.bias")
    page.wait_for_function("document.getElementById('chart').data.filter(t => t.meta.kind === 'lr').length === 3")
    expect(page.locator("#snippet")).to_contain_text("['fc1.*'],  # group1: 1 parameter(s)")
    with page.expect_download() as dl:
        page.click("#download-csv")
    path = dl.value.path()
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip()
    assert header.startswith("step,epoch,no_decay_lr,no_decay_momentum,group1_lr")
