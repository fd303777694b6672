"""Graph capture and page timings (issue 11), next to the bare torch.export in the same run.

Run: ``.venv/bin/python benchmarks/graph.py`` (``--no-browser`` skips the page timings).

1. Capture (``capture_model``: torch.export on the fake shadow, FLOPs per op, the hooks
   fallback when forced) for GPT-2 small and GPT-2-XL built on the meta device from
   transformers' configs, 1,024 tokens; the bare ``torch.export.export`` of the same shadow
   (the peer: what any export-based viewer pays). Wall clock and this process's CPU time
   (the machine is shared: CPU time is what neighbours do not distort).
2. In headless Chromium, GPT-2 small on meta served with ``--inputs`` of 1,024 tokens: the
   Graph page interactive (first view drawn) cold (right after startup: the capture is
   included) and warm (memoised; median of 5 loads); expanding the transformer, then one
   block at a time (h.0, h.3, h.6, h.9; each collapsed again; median and worst), both right
   after the page is drawn and after a second of "finding the box" (the layout worker warms
   up while the page is idle). Targets: first view <= 1.5 s, expanding a block <= 300 ms.
3. The 20,000-module model (``benchmarks/zoo.py:wide_model``: 4,999 blocks in one
   Sequential), served with 2x4 inputs: its Graph page's first view (the capture included:
   nothing is captured at startup past 5,000 modules), again (memoised), expanding one of
   the parts its 4,999 blocks are cut into, and a search revealing a module inside a part.
   ``--no-wide`` skips it (about a minute: the capture).
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torchscope.inspect.forward.fake import fake_forward
from torchscope.inspect.forward.sources import ResolvedInputs, resolve_inputs
from torchscope.inspect.graph import CaptureMode, capture_model
from torchscope.inspect.graph.outputs import OutputsOf

CONFIGS = {"gpt2-small": GPT2Config(), "gpt2-xl": GPT2Config(n_layer=48, n_embd=1600, n_head=25)}
SPEC = '{"kwargs": {"input_ids": {"shape": [1, 1024], "dtype": "int64", "high": 50257}}}'
T = TypeVar("T")
READY = "document.getElementById('graph-panel').dataset.ready === '1'"


def gpt2_small_meta() -> torch.nn.Module:
    with torch.device("meta"):
        return GPT2LMHeadModel(CONFIGS["gpt2-small"])


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall-clock and CPU seconds."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def capture_times() -> None:
    print("capture on fake tensors, 1,024 tokens (wall / CPU):")
    for name, config in CONFIGS.items():
        with torch.device("meta"):
            model = GPT2LMHeadModel(config)
        resolved = resolve_inputs(model, given={"kwargs": {"input_ids": {"shape": [1, 1024], "dtype": "int64", "high": 50257}}})
        capture_one(name, model, resolved)


def capture_one(name: str, model: torch.nn.Module, resolved: ResolvedInputs) -> None:
    runs = [CaptureMode.auto, CaptureMode.auto, CaptureMode.hooks] if name == "gpt2-small" else [CaptureMode.auto, CaptureMode.hooks]
    for i, mode in enumerate(runs):
        cap, wall, cpu = timed(lambda mode=mode: capture_model(model, resolved, mode))
        first = " (first export in the process)" if i == 0 and name == "gpt2-small" else ""
        print(
            f"  {name:10s} {mode!s:5s} -> {cap.method!s:6s} {wall:6.2f} s / {cpu:6.2f} s  ({len(cap.atoms)} nodes, "
            f"{len(cap.frames)} module calls, {cap.total_flops / 1e9:.0f} GFLOPs){first}"
        )

    def bare() -> None:
        with fake_forward(model) as ctx:
            args, kwargs = ctx.inputs(resolved)
            torch.export.export(OutputsOf(ctx.module), args, kwargs, strict=False)

    _, wall, cpu = timed(bare)
    print(f"  {name:10s} bare torch.export.export with its defaults (peer): {wall:6.2f} s / {cpu:6.2f} s")


def serve(specs: list[str], inputs: str) -> tuple[str, Callable[[], None]]:
    """A real server in a thread: its URL, and how to stop it."""
    import uvicorn

    from torchscope.main import create_app
    from torchscope.settings import Settings

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(specs=specs, inputs=[inputs]))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join()  # its shutdown waits for the startup work: exiting under it can abort the process

    return f"http://127.0.0.1:{port}", stop


def page_times() -> None:
    from playwright.sync_api import Page, sync_playwright

    base, stop = serve(["benchmarks.graph:gpt2_small_meta"], SPEC)
    url = f"{base}/models/gpt2_small_meta/graph"

    def load(page: Page) -> float:
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_function(READY, timeout=120_000)
        return time.perf_counter() - t

    def click(page: Page, selector: str) -> float:
        """Milliseconds from a click until the graph is drawn again."""
        page.evaluate("document.getElementById('graph-panel').dataset.ready = 'x'")
        t = time.perf_counter()
        page.locator(selector).dispatch_event("click")
        page.wait_for_function(READY)
        return 1000 * (time.perf_counter() - t)

    print("GPT-2 small (meta, 1,024 tokens), Graph page in headless Chromium:")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/lib/chromium/chromium", headless=True, args=["--disable-gpu", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        print(f"  first view, first visit right after startup (the startup thread captures it): {load(page):5.2f} s")
        warm = [load(page) for _ in range(5)]
        print(f"  first view, warm (capture memoised): median {statistics.median(warm):5.2f} s, worst {max(warm):5.2f} s (target 1.5 s)")
        for think in (0.0, 1.0):
            load(page)
            page.wait_for_timeout(1000 * think)
            whole = click(page, '[data-id="m:transformer#0"] .toggle')
            blocks, parts = [], []
            for block in ("h.0", "h.3", "h.6", "h.9"):
                page.wait_for_timeout(1000 * think)
                blocks.append(click(page, f'[data-id="m:transformer.{block}#0"] .toggle'))
                parts.append(page.evaluate("window.tsGraph.state.timings"))
                click(page, f'.g-group[data-id="m:transformer.{block}#0"] > text.title')  # collapse it again
            label = "right after drawing" if not think else f"after {think:.0f} s idle"
            print(
                f"  {label}: expand transformer (12 blocks) {whole:4.0f} ms; expand one block: median "
                f"{statistics.median(blocks):4.0f} ms, worst {max(blocks):4.0f} ms (target 300 ms; each: "
                + ", ".join(f"{b:.0f}" for b in blocks) + "); of which "
                + ", ".join(f"{k} {statistics.median(p[k] for p in parts):.0f}" for k in ("compose", "layout", "draw"))
                + " ms (medians; the rest: the view's request if not prefetched yet, events)"
            )
        nodes = page.evaluate("document.getElementById('graph-panel').dataset.nodes")
        print(f"  nodes on screen with the transformer open: {nodes}")
        browser.close()
    stop()


def wide_page_times() -> None:
    from playwright.sync_api import sync_playwright

    base, stop = serve(["benchmarks/zoo.py:wide_model"], '{"args": [{"shape": [2, 4]}]}')
    done = "['1', 'error'].includes(document.getElementById('graph-panel').dataset.ready)"
    print("20,000 modules (4,999 blocks in one Sequential), Graph page in headless Chromium:")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/lib/chromium/chromium", headless=True, args=["--disable-gpu", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for label in ("first view, first visit (the capture included)", "first view again (capture memoised)"):
            t = time.perf_counter()
            page.goto(f"{base}/models/wide_model/graph")
            page.wait_for_function(done, timeout=600_000)
            nodes = page.evaluate("document.getElementById('graph-panel').dataset.nodes")
            error = page.evaluate("document.getElementById('graph-error').innerText")
            print(f"  {label}: {time.perf_counter() - t:6.2f} s, {nodes} nodes drawn {error}")
        captured = page.evaluate("document.getElementById('graph-capture').innerText")
        print(f"  {captured}")

        def timed_click(target: str) -> float:
            page.evaluate("document.getElementById('graph-panel').dataset.ready = 'x'")
            t = time.perf_counter()
            page.locator(target).click()
            page.wait_for_function(done)
            return 1000 * (time.perf_counter() - t)

        ms = timed_click('#viewport [data-id="m:#0/2300-2400"] .toggle')
        nodes = page.evaluate("document.getElementById('graph-panel').dataset.nodes")
        print(f"  expand a part (100 blocks): {ms:5.0f} ms, {nodes} nodes drawn")
        page.click("#collapse-all")
        page.fill("#graph-search", "4321.1")
        page.locator('#search-results li[data-id="m:4321.1#0"]').wait_for()
        ms = timed_click('#search-results li[data-id="m:4321.1#0"]')
        focus = page.evaluate("document.querySelector('.hl-focus') && document.querySelector('.hl-focus').dataset.id")
        print(f"  search '4321.1', reveal (open its part and its block): {ms:5.0f} ms, focused {focus}")
        browser.close()
    stop()


if __name__ == "__main__":
    capture_times()
    if "--no-browser" not in sys.argv:
        page_times()
        if "--no-wide" not in sys.argv:
            wide_page_times()
