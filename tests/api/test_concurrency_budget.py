"""Issue 9: while hostile uploads and huge previews are refused, everyone else is still served quickly.

A real uvicorn server; other threads keep sending a 1 MB crash-pickle upload, a decompression
bomb, previews of 300 chained schedulers over a million steps and 64 groups x 1e6 steps as CSV,
and a 4 MB JSON body of two million elements. Meanwhile ordinary requests must keep a p99 under 200 ms.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import LiveServer
from tests.fixtures.hostile import _bomb_zip, _deep_tuple_key_pickle, _torch_zip
from torchscope.settings import Settings


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    s = LiveServer(Settings(specs=["torchscope.examples:TwoLayerNet"])).start()
    yield s
    s.stop()


def send(url: str, data: bytes | None = None, ctype: str = "application/json") -> int:
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", ctype)
        req.add_header("X-Torchscope", "1")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def test_refusals_do_not_slow_anyone_else(server: LiveServer, tmp_path: Path) -> None:
    crash = _torch_zip(tmp_path / "deep.pt", _deep_tuple_key_pickle()).read_bytes()
    bomb = _bomb_zip(tmp_path / "bomb.pt", 300 * 1024 * 1024).read_bytes()
    chained = {"type": "ChainedScheduler", "args": {"schedulers": [{"type": "ConstantLR"}] * 300}}
    huge = [
        (f"{server.url}/api/schedules/preview", json.dumps({"scheduler": chained, "epochs": 1000, "steps_per_epoch": 1000}).encode()),
        (f"{server.url}/api/schedules/csv", json.dumps({"scheduler": {"type": "StepLR", "args": {"step_size": 5}},
                                                        "groups": [{}] * 64, "epochs": 1000, "steps_per_epoch": 1000,
                                                        "step": "batch"}).encode()),
        (f"{server.url}/api/schedules/preview", b"[" + b"1," * 2_000_000 + b"1]"),
    ]
    uploads = [(f"{server.url}/api/checkpoints/upload?filename=x.pt", crash), (f"{server.url}/api/checkpoints/upload?filename=y.pt", bomb)]
    send(f"{server.url}/checkpoints")  # starts the reader process, as a user opening the page would
    stop = threading.Event()
    refused: list[int] = []

    def hostile(jobs: list[tuple[str, bytes]], ctype: str) -> None:
        while not stop.is_set():
            for url, body in jobs:
                refused.append(send(url, body, ctype))

    workers = [
        threading.Thread(target=hostile, args=(uploads, "application/octet-stream"), daemon=True),
        threading.Thread(target=hostile, args=(huge, "application/json"), daemon=True),
    ]
    for w in workers:
        w.start()
    times = []
    try:
        for i in range(150):
            url = f"{server.url}/api/models/twolayernet" if i % 2 else f"{server.url}/api/models/twolayernet/histogram?tensor=fc1.weight"
            t = time.perf_counter()
            assert send(url) == 200
            times.append(time.perf_counter() - t)
            time.sleep(0.01)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    assert len(refused) >= 10 and all(400 <= s < 500 for s in refused), sorted(set(refused))
    assert 422 in set(refused)
    print(f"p99 {p99 * 1000:.0f} ms, median {times[len(times) // 2] * 1000:.0f} ms, {len(refused)} refusals")
    assert p99 < 0.2, f"p99 {p99 * 1000:.0f} ms (median {times[len(times) // 2] * 1000:.0f} ms)"
