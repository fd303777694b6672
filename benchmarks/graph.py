"""Graph capture and page timings (issue 11).

* capture time (torch.export on fake tensors, then the hooks fallback) for GPT-2 small and
  GPT-2-XL built on the meta device from transformers' configs, 1,024 tokens; the bare
  ``torch.export.export`` of the same model in the same run (the peer: what it costs anyway);
* in headless Chromium, GPT-2 small served on meta: the Graph page interactive (first view
  drawn) cold (capture included) and warm, and expanding one block. Targets: first view
  <= 1.5 s, expanding a block <= 300 ms.

Run: ``.venv/bin/python benchmarks/graph.py``
"""

from __future__ import annotations

import socket
import threading
import time

import torch
import uvicorn
from transformers import GPT2Config, GPT2LMHeadModel

from torchscope.inspect.forward.fake import fake_forward
from torchscope.inspect.forward.sources import resolve_inputs
from torchscope.inspect.graph import CaptureMode, capture_graph
from torchscope.inspect.graph.outputs import OutputsOf
from torchscope.main import create_app
from torchscope.settings import Settings

CONFIGS = {"gpt2-small": GPT2Config(), "gpt2-xl": GPT2Config(n_layer=48, n_embd=1600, n_head=25)}
SPEC = '{"kwargs": {"input_ids": {"shape": [1, 1024], "dtype": "int64", "high": 50257}}}'


def gpt2_small_meta() -> torch.nn.Module:
    with torch.device("meta"):
        return GPT2LMHeadModel(CONFIGS["gpt2-small"])


def capture_times() -> None:
    for name, config in CONFIGS.items():
        with torch.device("meta"):
            model = GPT2LMHeadModel(config)
        resolved = resolve_inputs(model, given={"kwargs": {"input_ids": {"shape": [1, 1024], "dtype": "int64", "high": 50257}}})
        for mode in (CaptureMode.auto, CaptureMode.hooks):
            t = time.perf_counter()
            with fake_forward(model) as ctx:
                args, kwargs = ctx.inputs(resolved)
                cap = capture_graph(model, args, kwargs, mode=mode)
            total = time.perf_counter() - t
            print(f"{name:10s} capture {mode!s:6s}: {total:6.2f} s  ({len(cap.atoms)} nodes, {len(cap.frames)} module calls, {cap.total_flops / 1e9:.1f} GFLOPs)")
        t = time.perf_counter()
        with fake_forward(model) as ctx:
            args, kwargs = ctx.inputs(resolved)
            torch.export.export(OutputsOf(model), args, kwargs, strict=False)
        print(f"{name:10s} bare torch.export.export (peer): {time.perf_counter() - t:6.2f} s")


def page_times() -> None:
    from playwright.sync_api import sync_playwright

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(specs=["benchmarks.graph:gpt2_small_meta"]))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/models/gpt2_small_meta/graph"
    ready = "document.getElementById('graph-panel').dataset.ready === '1'"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/lib/chromium/chromium", headless=True, args=["--disable-gpu", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for label in ("cold (capture included)", "warm (capture memoised)", "warm, cached JS"):
            t = time.perf_counter()
            page.goto(url)
            page.wait_for_function(ready, timeout=120_000)
            print(f"gpt2-small page interactive, {label}: {time.perf_counter() - t:5.2f} s (target 1.5 s warm)")
        page.evaluate("document.getElementById('graph-panel').dataset.ready = 'x'")
        t = time.perf_counter()
        page.locator('[data-id="m:transformer#0"] .toggle').click()
        page.wait_for_function(ready)
        print(f"expand transformer (12 blocks): {1000 * (time.perf_counter() - t):5.0f} ms")
        for block in ("h.0", "h.5"):
            page.evaluate("document.getElementById('graph-panel').dataset.ready = 'x'")
            t = time.perf_counter()
            page.locator(f'[data-id="m:transformer.{block}#0"] .toggle').dispatch_event("click")
            page.wait_for_function(ready)
            print(f"expand one block ({block}): {1000 * (time.perf_counter() - t):5.0f} ms (target 300 ms)")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    capture_times()
    page_times()
