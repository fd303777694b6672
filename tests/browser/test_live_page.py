"""An open page follows its live model (torchscope.show): a change made from Python shows a notice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from playwright.sync_api import Page, expect
from torch import nn

import torchscope
from tests.browser.conftest import PageProblems
from torchscope import api


@pytest.fixture
def model() -> Iterator[nn.Module]:
    torch.manual_seed(0)
    yield nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    api.stop()


def polls_after(page: Page, n: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.livePolls || 0) >= {n}")


def test_the_open_page_says_when_the_model_changed_in_python(
    page: Page, model: nn.Module, page_problems: PageProblems
) -> None:
    shown = torchscope.show(model, name="live-net")
    page.goto(shown.url)
    page.wait_for_function("document.getElementById('tree').dataset.ready === '1'")
    notice = page.locator("#live-notice")
    polls_after(page, 1)
    expect(notice).to_be_hidden()

    # A change this page makes itself (init apply through its own API helper) is no news to it.
    page.evaluate(
        """() => ts.api('/api/models/live-net/init/apply', {method: 'POST', body:
            {rules: [{match: 'Linear', tensor: 'bias', fn: 'zeros_', args: {}}], seed: 0}})"""
    )
    now = int(page.evaluate("Number(document.body.dataset.livePolls)"))
    polls_after(page, now + 2)
    expect(notice).to_be_hidden()

    with torch.no_grad():  # one step of "training" in the user's code
        model[0].weight.add_(0.5)
    page.wait_for_selector("#live-notice[data-state='changed']")
    expect(notice).to_contain_text("changed (in Python or in another tab)")

    notice.get_by_role("link", name="Refresh").click()
    page.wait_for_function("document.getElementById('tree').dataset.ready === '1'")
    polls_after(page, 1)
    expect(notice).to_be_hidden()
    model.append(nn.Softmax(dim=-1))  # structure too: a module added from Python
    page.wait_for_selector("#live-notice[data-state='changed']")
    page.reload()
    page.wait_for_function("document.getElementById('tree').dataset.ready === '1'")
    expect(page.locator("#tree")).to_contain_text("Softmax")

    shown.stop()  # the server is gone: the page says so once and stops asking
    page.wait_for_selector("#live-notice[data-state='stopped']")
    page_problems.console_errors[:] = [e for e in page_problems.console_errors if "ERR_CONNECTION_REFUSED" not in e]
