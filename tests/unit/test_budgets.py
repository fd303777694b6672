"""Issue 9: the budgets that make hostile files a precise refusal, and the worker process under them."""

from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from tests.fixtures.checkpoints import write_zoo
from tests.fixtures.hostile import _deep_tuple_key_pickle
from torchscope.inspect.budgets import JsonBudgetError, load_json
from torchscope.inspect.checkpoints import (
    CheckpointFormat,
    CheckpointStore,
    Isolation,
    UnsafeToRead,
    open_checkpoint,
)
from torchscope.inspect.checkpoints import budgets as B
from torchscope.inspect.checkpoints import store as store_module
from torchscope.inspect.checkpoints.records import UnreadableCheckpoint
from torchscope.inspect.errors import NotFound


def data_pkl(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))


# --------------------------------------------------------------------------- the opcode pre-pass


def test_the_deep_tuple_key_really_kills_a_process() -> None:
    """Why depth is bounded before unpickling: CPython hashes the nested tuple recursively in C."""
    proc = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=_deep_tuple_key_pickle(), capture_output=True, timeout=60,
    )
    assert proc.returncode < 0  # killed by a signal (SIGSEGV), no Python exception
    with pytest.raises(UnreadableCheckpoint, match="nests more than 200 levels"):
        B.scan_pickle(_deep_tuple_key_pickle(), "x.pt")


def test_every_real_checkpoint_passes_the_scan(tmp_path: Path) -> None:
    zoo = write_zoo(tmp_path)
    for name in ("state_dict", "training", "whole_model"):
        data = data_pkl(zoo[name])
        scan = B.scan_pickle(data, name)
        assert scan.end == len(data) and 0 < scan.depth < 20
    model = torch.nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.zeros(2, 1, 16), torch.zeros(2, 1, 16)).sum().backward()
    opt.step()
    torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, tmp_path / "t.pt")
    B.scan_pickle(data_pkl(tmp_path / "t.pt"), "t.pt")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_objects_at_every_protocol(protocol: int) -> None:
    shared = [1, 2]
    obj = {"a": (1, (2, (3,))), "b": {4, 5}, "c": collections.OrderedDict(x=shared, y=shared), "d": 10**30, "e": b"xy"}
    data = pickle.dumps(obj, protocol=protocol)
    scan = B.scan_pickle(data, "p")
    assert scan.end == len(data) and scan.objects > 5


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x80\x02K\x01r\xff\xff\xff\x7f.", "memo bomb"),  # LONG_BINPUT 2**31-1
        (b"\x80\x02" + b"(" * 300 + b"N" + b"t" * 300 + b".", "levels deep"),  # MARK nesting
        (b"\x80\x02" + b"]" * 300 + b"a" * 299 + b".", "levels deep"),  # list nesting
        (b"\x80\x02\x8b" + (100).to_bytes(4, "little") + b"\x01" * 100 + b".", "100-byte integer"),
        (b"\x80\x02I" + b"1" * 50 + b"\n.", "50 digits"),
        (b"\x80\x02X\xff\xff\x00\x00abc", "runs past the end"),
        (b"\x80\x02N", "no STOP"),
        (b"\x80\x02a.", "underflow"),
        (b"\x80\x02\xfe.", "unknown opcode"),
        (b"\x80\x02h\x05.", "never stored"),
    ],
)
def test_hostile_pickles_are_refused_by_name(data: bytes, fragment: str) -> None:
    with pytest.raises(UnreadableCheckpoint, match=fragment):
        B.scan_pickle(data, "h.pt")


def test_object_count_is_bounded() -> None:
    with pytest.raises(UnreadableCheckpoint, match="more than 1,000 objects"):
        B.scan_pickle(b"\x80\x02(" + b"N" * 2000 + b"l.", "f.pt", max_objects=1000)


# --------------------------------------------------------------------------- zip archives and JSON


def test_a_deflated_member_is_refused_before_inflating_and_read_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\0" * 5_000_000)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("archive/data.pkl")
        assert info.compress_size < 10_000
        with pytest.raises(UnreadableCheckpoint, match="inflates to 5,000,000 bytes"):
            B.read_member(zf, info, "z.zip", limit=1_000_000)
        assert len(B.read_member(zf, info, "z.zip", limit=6_000_000)) == 5_000_000


def test_zip_entry_count_is_read_before_zipfile_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "many.pt"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(30):
            zf.writestr(f"archive/data/{i}", b"")
    monkeypatch.setattr(B, "MAX_ZIP_ENTRIES", 20)
    with path.open("rb") as f, pytest.raises(UnreadableCheckpoint, match="30 entries"):
        B.zip_entry_count(f, "many.pt")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, "levels"),
        ("[" * 70 + "]" * 70, "levels"),
        ('{"n": 1' + "0" * 5000 + "}", "5001 digits"),
        ("[" + "[]," * 100 + "[]]", "elements"),
    ],
)
def test_json_within_budgets(text: str, fragment: str) -> None:
    with pytest.raises(JsonBudgetError, match=fragment):
        load_json(text, what="j", max_items=50 if fragment == "elements" else 1_000_000)
    assert load_json('{"a": [1, 2, {"b": null}]}', what="j") == {"a": [1, 2, {"b": None}]}


# --------------------------------------------------------------------------- sniffing by structure


def _target_header(n: int) -> bytes:
    """A safetensors file, written by the safetensors library, whose header is exactly n bytes."""
    for pad in range(max(0, n - 200), n + 8):
        data = safetensors_bytes({"w": torch.arange(4, dtype=torch.float32)}, metadata={"pad": "x" * pad})
        if int.from_bytes(data[:8], "little") == n:
            return data
    raise AssertionError(f"no header of {n} bytes")


def test_safetensors_files_at_many_header_sizes_are_sniffed_as_safetensors(tmp_path: Path) -> None:
    # every size from 96 (the smallest with a pad) to 2 KB (8-byte steps: the library pads), then lengths whose first bytes
    # are a blank and "{" (0x7B20), a pickle's 0x80 (0x0480), or "P" (0x7B50, as in a zip's "PK")
    sizes = [*range(96, 2048, 8), 0x7B20, 0x0480, 0x1080, 0x7B50]
    for n in sizes:
        data = _target_header(n)
        path = tmp_path / f"h{n}.safetensors"
        path.write_bytes(data)
        ckpt = open_checkpoint(path)
        assert ckpt.format is CheckpointFormat.SAFETENSORS, n
        assert torch.equal(ckpt.tensor("w"), torch.arange(4, dtype=torch.float32))
    # the 0x7B20 case: the file starts with a blank then "{", which once made it look like an index
    assert (tmp_path / f"h{0x7B20}.safetensors").read_bytes()[:2] == b" {"


# --------------------------------------------------------------------------- the worker process


@pytest.fixture(scope="module")
def isolation() -> object:
    iso = Isolation(timeout_s=1.5, memory_mb=256, workers=1)
    yield iso
    iso.close()


def test_a_crash_a_bomb_and_a_hang_are_refusals_and_the_pool_lives_on(isolation: Isolation, tmp_path: Path) -> None:
    with pytest.raises(UnsafeToRead, match=r"crashed on x \(signal 6\)") as crash:
        isolation.call(os.abort, what="x")
    assert crash.value.status == 422
    with pytest.raises(UnsafeToRead, match="more than its 256 MB memory budget"):
        isolation.call(bytearray, 2 << 30, what="x")
    t = time.perf_counter()
    with pytest.raises(UnsafeToRead, match=r"longer than 1\.5 s"):
        isolation.call(time.sleep, 60, what="x")
    assert time.perf_counter() - t < 10
    torch.save({"w": torch.ones(3)}, tmp_path / "ok.pt")
    ckpt = isolation.open(tmp_path / "ok.pt", cid="ok", name="mine.pt")
    assert ckpt.name == "mine.pt" and torch.equal(ckpt.tensor("w"), torch.ones(3))  # read in the server, lazily
    with pytest.raises(NotFound) as missing:  # domain errors come back as themselves
        isolation.open(tmp_path / "nope.pt", cid="n", name="nope.pt")
    assert missing.value.status == 404 and str(tmp_path) not in missing.value.message


def test_legacy_and_torch_loaded_files_come_back_loadable(isolation: Isolation, tmp_path: Path) -> None:
    torch.save({"w": torch.arange(3.0)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    ckpt = isolation.open(tmp_path / "old.pt", cid="old", name=None)
    assert ckpt.format is CheckpointFormat.TORCH_LEGACY and torch.equal(ckpt.tensor("w"), torch.arange(3.0))


def test_one_slow_open_does_not_hold_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.save({"w": torch.ones(1)}, tmp_path / "fast.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "slow.pt")
    real = store_module.open_checkpoint
    release = threading.Event()

    def slow_open(path: object, **kw: object) -> object:
        if str(path).endswith("slow.pt"):
            release.wait(10)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "open_checkpoint", slow_open)
    store = CheckpointStore()
    slow = threading.Thread(target=store.open, args=(tmp_path / "slow.pt",))
    slow.start()
    time.sleep(0.05)
    t = time.perf_counter()
    assert store.open(tmp_path / "fast.pt").id == "fast-pt"
    assert time.perf_counter() - t < 2
    release.set()
    slow.join()
    assert sorted(c.id for c in store) == ["fast-pt", "slow-pt"]


def test_torch_save_bytes_roundtrip() -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    assert buf.getvalue()[:2] == b"PK"
