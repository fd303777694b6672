"""The checkpoint pages in a real Chromium: upload a file, read the compare report, load it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, PageProblems
from tests.fixtures.checkpoints import ddp_state_dict, write_zoo
from torchscope.examples import TwoLayerNet
from torchscope.settings import Settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser-ckpt")
    zoo = write_zoo(root / "zoo")
    torch.manual_seed(123)
    zoo["ddp"] = root / "ddp_run.pth"
    torch.save(ddp_state_dict(TwoLayerNet()), zoo["ddp"])
    return zoo


@pytest.fixture(scope="module")
def server(live_server_factory: Callable[[Settings], LiveServer], files: dict[str, Path]) -> LiveServer:
    return live_server_factory(
        Settings(specs=["torchscope.examples:TwoLayerNet"], checkpoints=[files["training"], files["malicious"]])
    )


def test_upload_compare_fix_and_load(
    page: Page, server: LiveServer, files: dict[str, Path], page_problems: PageProblems
) -> None:
    page.goto(server.url + "/checkpoints")
    expect(page.locator(".startup-failure")).to_contain_text("posix.system")
    page.set_input_files("#upload-file", str(files["ddp"]))
    page.click("#upload-button")
    page.wait_for_url("**/checkpoints/ddp_run-pth")
    page.wait_for_function("document.getElementById('tensor-tree').dataset.ready === '1'")
    expect(page.locator("#tensor-count")).to_have_text("4")

    page.select_option("#compare-model", "twolayernet")
    page.click("#compare-button")
    page.wait_for_function("document.getElementById('compare-result').dataset.ready === '1'")
    expect(page.locator("#compare-verdict")).to_contain_text("strict load would fail")
    expect(page.locator("#missing-list li")).to_have_count(4)
    expect(page.locator("#unexpected-list")).to_contain_text("module.fc1.weight")
    hint = page.locator('.hint[data-kind="strip_prefix"]')
    expect(hint).to_contain_text("DataParallel")
    expect(page.locator("#torch-message")).to_contain_text('Missing key(s) in state_dict: "fc1.weight"', use_inner_text=False)

    # A strict load is refused and changes nothing.
    page.click("#load-strict")
    # the status in words (the number stays on the box)
    expect(page.locator("#load-error")).to_contain_text("Not possible: strict load refused, nothing was changed")
    expect(page.locator("#load-error")).to_have_attribute("data-status", "409")
    assert all("409" in e for e in page_problems.console_errors)
    page_problems.console_errors.clear()  # the browser logs the refused request itself

    # Apply the suggested fix, compare again, load.
    page.evaluate("document.getElementById('compare-result').removeAttribute('data-ready')")
    hint.locator(".apply-fix").click()
    page.wait_for_function("document.getElementById('compare-result').dataset.ready === '1'")
    expect(page.locator("#compare-verdict")).to_contain_text("strict load would succeed")
    expect(page.locator("#strip-prefix")).to_have_value("module.")
    page.click("#load-strict")
    expect(page.locator("#load-result")).to_contain_text("Loaded 4 tensors into twolayernet (strict).")

    # The served model now holds the checkpoint's weights: diff against it shows no change.
    page.select_option("#diff-target", "model:twolayernet")
    page.click("#diff-button")
    page.wait_for_function("document.getElementById('diff-result').dataset.ready === '1'")
    expect(page.locator("#diff-summary")).to_contain_text("4 common (4 unchanged)")
    url = server.url + "/api/checkpoints/ddp_run-pth/diff?model=twolayernet&strip_prefix=module."
    with urllib.request.urlopen(url) as r:
        assert all(row["max_abs"] == 0.0 for row in json.load(r)["common"])


def test_training_checkpoint_page_shows_optimizer_and_other(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/checkpoints/training-ckpt")
    page.wait_for_function("document.getElementById('tensor-tree').dataset.ready === '1'")
    adam = page.locator('.optimizer-panel[data-path="optimizer"]')
    expect(adam.locator('td[data-h="lr"]')).to_have_text("0.001")
    expect(adam.locator('td[data-h="weight_decay"]')).to_have_text("0.05")
    sgd = page.locator('.optimizer-panel[data-path="sgd"]')
    expect(sgd.locator('td[data-h="momentum"]')).to_have_text("0.9")
    expect(page.locator('#other-table tr[data-key="epoch"]')).to_contain_text("7")
    # names by order against the served model are marked as a guess
    page.click("#compare-button")
    page.wait_for_function("document.getElementById('compare-result').dataset.ready === '1'")
    expect(page.locator("#optimizer-names")).to_contain_text("guess")
    expect(adam.locator('tr[data-param="0"] .param-name')).to_contain_text("fc1.weight")


def test_histogram_of_a_checkpoint_tensor(page: Page, server: LiveServer, files: dict[str, Path]) -> None:
    from torchscope.inspect import histograms
    page.goto(server.url + "/checkpoints/training-ckpt")
    page.wait_for_function("document.getElementById('tensor-tree').dataset.ready === '1'")
    page.locator('a.tensor-link[data-key="model/fc1.weight"]').first.click()
    page.wait_for_function("document.getElementById('hist-chart').dataset.ready === '1'")
    drawn = page.evaluate("document.getElementById('hist-chart').data[0].y")
    w = torch.load(files["training"], weights_only=True)["model"]["fc1.weight"]
    expected = histograms.tensor_histogram("model/fc1.weight", w, bins=64).to_dict()
    assert sum(drawn) == w.numel()
    assert drawn == list(expected["counts"])
    expect(page.locator("#hist-stats")).to_contain_text("numel 200")


def test_diff_overlay_against_model(page: Page, server: LiveServer, files: dict[str, Path]) -> None:
    page.goto(server.url + "/checkpoints/training-ckpt")
    page.wait_for_function("document.getElementById('tensor-tree').dataset.ready === '1'")
    page.select_option("#diff-target", "model:twolayernet")
    page.click("#diff-button")
    page.wait_for_function("document.getElementById('diff-result').dataset.ready === '1'")
    page.locator('#diff-table tr[data-key="fc2.bias"]').click()
    page.wait_for_function("document.getElementById('hist-chart').dataset.ready === '1'")
    traces = page.evaluate("document.getElementById('hist-chart').data.map(t => [t.name, t.y.reduce((s, v) => s + v, 0)])")
    assert traces == [["a: training.ckpt", 2], ["b: TwoLayerNet (current weights)", 2]]


def test_refused_upload_is_explained_on_the_page_and_never_runs(
    page: Page, server: LiveServer, files: dict[str, Path], page_problems: PageProblems
) -> None:
    page.goto(server.url + "/checkpoints")
    page.set_input_files("#upload-file", str(files["malicious"]))
    page.click("#upload-button")
    error = page.locator("#upload-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Invalid input: ")
    expect(error).to_have_attribute("data-status", "422")
    expect(error).to_contain_text("posix.system")
    expect(page.locator("#upload-progress")).to_be_hidden()
    assert page.url.endswith("/checkpoints")
    assert not files["marker"].exists()  # the payload would have created it
    assert all("422" in e for e in page_problems.console_errors)
    page_problems.console_errors.clear()  # the browser logs the refused request itself
