"""Issues 8 and 12 in a real Chromium: pins, per-epoch OneCycleLR, SWA, resume, checkpoint compare defaults."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from playwright.sync_api import Page, expect
from torch.optim import lr_scheduler as L

from tests.browser.conftest import LiveServer
from tests.browser.test_schedules_page import READY, draws, wait_redraw
from torchscope.examples import TwoLayerNet
from torchscope.settings import Settings


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, live_server_factory: Callable[[Settings], LiveServer]) -> tuple[LiveServer, list[float]]:
    """A served SmallCNN (first) and TwoLayerNet, and a training checkpoint of the TwoLayerNet: AdamW with the
    decay / no-decay split (no param_names), OneCycleLR, 40 steps; plus the lrs its next steps use."""
    torch.manual_seed(0)
    model = TwoLayerNet()
    opt = torch.optim.AdamW([{"params": [model.fc1.weight, model.fc2.weight]},
                             {"params": [model.fc1.bias, model.fc2.bias], "weight_decay": 0.0}], lr=1e-3)
    sched = L.OneCycleLR(opt, [0.01, 0.005], total_steps=100)
    for _ in range(40):
        opt.zero_grad()
        model(torch.randn(4, 10)).pow(2).mean().backward()
        opt.step()
        sched.step()
    path = tmp_path_factory.mktemp("run") / "run.ckpt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict()}, path)
    ref = [opt.param_groups[0]["lr"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(10):
            sched.step()
            ref.append(opt.param_groups[0]["lr"])
    server = live_server_factory(Settings(specs=["torchscope.examples:SmallCNN", "torchscope.examples:TwoLayerNet"],
                                          checkpoints=[path]))
    return server, ref


def test_pins_each_have_their_own_style_and_legend(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/schedules")
    page.wait_for_function(READY)
    intents = page.locator(".sched-node .intent").all_text_contents()
    assert intents and not any("per either" in t for t in intents)
    assert "stepped once per epoch or after every batch" in intents[0]  # SequentialLR
    for typ in ("StepLR", "ExponentialLR"):
        before = draws(page)
        page.select_option('[data-field="scheduler.type"]', typ)
        wait_redraw(page, before)
        before = draws(page)
        page.click("#pin")
        wait_redraw(page, before)
    pinned = page.eval_on_selector("#chart", """c => c.data.filter(t => t.meta.kind === 'lr' && t.meta.pinned)
        .map(t => ({name: t.name, dash: t.line.dash, color: t.line.color, group: t.legendgroup,
                    title: t.legendgrouptitle && t.legendgrouptitle.text}))""")
    assert [p["name"] for p in pinned] == ["pin 1 (StepLR) · group0 lr", "pin 2 (ExponentialLR) · group0 lr"]
    a, b = pinned
    assert (a["dash"], a["color"]) != (b["dash"], b["color"]) and a["dash"] != b["dash"]
    assert a["group"] != b["group"] and a["title"] == "pin 1 (StepLR)"
    current = page.eval_on_selector("#chart", "c => c.data.find(t => t.meta.kind === 'lr' && !t.meta.pinned).line")
    assert current["dash"] == "solid" and current["dash"] not in (a["dash"], b["dash"])


def test_onecycle_per_epoch_and_the_mistake_overlay(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/schedules")
    page.wait_for_function(READY)
    before = draws(page)
    page.select_option('[data-field="scheduler.type"]', "OneCycleLR")
    wait_redraw(page, before)
    note = page.locator('#warnings li[data-code="batch-schedule-per-epoch"]')
    expect(note).to_contain_text("whole cycle runs over the 50 epochs")
    assert "barely moves" not in note.text_content()  # type: ignore[operator]
    before = draws(page)
    page.check("#overlay-mistake")
    wait_redraw(page, before)
    expect(page.locator('#warnings li[data-code="overlay-crash"]')).to_contain_text("call number 51 (after optimizer step 50")
    shapes = page.eval_on_selector("#chart", "c => c.layout.shapes.map(s => s.x0)")
    assert shapes == [51]  # the overlay ends where torch raises (total_steps = 50 epochs, stepped per batch)
    # SWA after step 39 (epochs): the end of the run is SWALR's swa_lr
    before = draws(page)
    page.uncheck("#overlay-mistake")
    wait_redraw(page, before)
    before = draws(page)
    page.check("#swa-on")
    wait_redraw(page, before)
    expect(page.locator('[data-field="swa.scheduler.args.swa_lr"]')).to_have_value("0.05")
    last = page.eval_on_selector("#chart", "c => { const y = c.data.find(t => t.meta.kind === 'lr').y; return y[y.length - 1]; }")
    assert last == pytest.approx(0.05, rel=1e-12)


def test_resume_from_the_checkpoint_page(page: Page, run: tuple[LiveServer, list[float]]) -> None:
    server, ref = run
    page.goto(server.url + "/checkpoints/run-ckpt")
    link = page.locator(".scheduler-panel .resume-link")
    expect(page.locator(".scheduler-panel .last-epoch")).to_have_text("40")
    link.click()
    page.wait_for_function("document.getElementById('resume-chart').dataset.ready === '1'")
    expect(page.locator("#resume-panel")).to_have_attribute("open", "")
    y = page.eval_on_selector("#resume-chart", "c => Array.from(c.data.find(t => t.meta.kind === 'lr').y).slice(0, 11)")
    x = page.eval_on_selector("#resume-chart", "c => Array.from(c.data[0].x).slice(0, 2)")
    assert y == ref and x == [40, 41]  # what torch gives the resumed run, bit for bit
    expect(page.locator("#resume-info")).to_contain_text("OneCycleLR saved at last_epoch 40")
    page.fill("#resume-steps", "100")
    page.click("#resume-run")
    expect(page.locator('#resume-warnings li[data-code="stepped-past-end"]')).to_contain_text("Tried to step 101 times")


def test_checkpoint_compare_opens_on_the_best_model_and_names_ids(page: Page, run: tuple[LiveServer, list[float]]) -> None:
    server, _ = run
    page.goto(server.url + "/checkpoints/run-ckpt")
    expect(page.locator("#compare-model")).to_have_value("twolayernet")  # SmallCNN is served first
    assert page.locator("#diff-target").input_value() == "model:twolayernet"
    expect(page.locator('.state-value[data-state="step"]').first).to_have_text("40")  # AdamW's step count
    expect(page.locator('.param-groups td[data-h="step"]').first).to_have_text("40")
    page.click("#compare-button")
    page.wait_for_function("document.getElementById('compare-result').dataset.ready === '1'")
    expect(page.locator("#compare-verdict")).to_contain_text("4 of 4 model keys match")
    # ids 0,1 are the weights (group 0), 2,3 the biases: named by group and shape, marked as guesses
    names = page.eval_on_selector_all("tr[data-param] .param-name", "tds => tds.map(t => [t.dataset.status, t.textContent])")
    assert [n[0] for n in names] == ["guess"] * 4
    assert [n[1].split()[0] for n in names] == ["fc1.weight", "fc2.weight", "fc1.bias", "fc2.bias"]
    page.select_option("#compare-model", "smallcnn")
    page.click("#compare-button")
    expect(page.locator("#compare-verdict")).to_contain_text("0 of 17 model keys match")
    expect(page.locator("#compare-verdict")).to_contain_text("3 of 3 BatchNorm num_batches_tracked counters, not counted")
