"""Opening checkpoints: metadata without reading tensors, lazy tensors equal to torch.load, safety."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.fixtures.checkpoints import lying_safetensors, write_zoo
from torchscope.inspect import checkpoints as ck
from torchscope.inspect.checkpoints import (
    CheckpointFormat,
    CheckpointStore,
    Group,
    UnreadableCheckpoint,
    UnsafeCheckpoint,
    open_checkpoint,
    pickle_globals,
    resolve_in_data_dir,
)
from torchscope.inspect.checkpoints.unpickler import StubUnpickler
from torchscope.inspect.errors import InvalidRequest, NotFound


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_zoo(tmp_path_factory.mktemp("zoo"))


def test_state_dict_lists_keys_shapes_dtypes_like_torch(zoo: dict[str, Path]) -> None:
    ckpt = open_checkpoint(zoo["state_dict"])
    sd = torch.load(zoo["state_dict"], weights_only=True)
    assert ckpt.format is CheckpointFormat.TORCH
    assert ckpt.state_dict_path == ""
    assert list(ckpt.tensors) == list(sd)
    for key, t in sd.items():
        info = ckpt.tensors[key]
        assert info.shape == tuple(t.shape)
        assert info.dtype == str(t.dtype).removeprefix("torch.")
        assert info.bytes == t.numel() * t.element_size()
        assert info.group is Group.MODEL
        assert torch.equal(ckpt.tensor(key), t)


def test_listing_reads_no_tensor_data(zoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Opening must not go through torch.load at all (the restricted unpickler reads data.pkl only).
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load called while listing")

    monkeypatch.setattr(torch, "load", boom)
    ckpt = open_checkpoint(zoo["training"])
    assert "model/fc1.weight" in ckpt.tensors


def test_tensors_are_materialised_memory_mapped(zoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    real_load = torch.load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "load", spy)
    ckpt = open_checkpoint(zoo["training"])
    ckpt.tensor("model/fc1.weight")
    ckpt.tensor("model/fc2.weight")
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]  # once, then cached


def test_training_checkpoint_nested_keys_optimizers_and_other(zoo: dict[str, Path]) -> None:
    ckpt = open_checkpoint(zoo["training"])
    raw = torch.load(zoo["training"], weights_only=True)
    assert ckpt.state_dict_path == "model"
    assert list(ckpt.state_dict_keys()) == list(raw["model"])
    assert ckpt.other == {"epoch": 7, "best_loss": 0.25, "config/lr": 1e-3, "config/name": "run-1"}
    # AdamW: hyperparameters per group and per-parameter state tensors at their key paths
    adam = ckpt.optimizers[0]
    assert adam.path == "optimizer"
    group = adam.param_groups[0]
    assert group["lr"] == raw["optimizer"]["param_groups"][0]["lr"]
    assert group["weight_decay"] == 0.05 and group["betas"] == [0.9, 0.999]
    assert adam.param_ids == [0, 1, 2, 3]
    assert set(adam.params[0].tensors) == {"step", "exp_avg", "exp_avg_sq"}
    key = adam.params[0].tensors["exp_avg"]
    assert key == "optimizer/state/0/exp_avg"
    assert ckpt.tensors[key].group is Group.OPTIMIZER
    assert torch.equal(ckpt.tensor(key), raw["optimizer"]["state"][0]["exp_avg"])
    # SGD with momentum
    sgd = ckpt.optimizers[1]
    assert sgd.param_groups[0]["momentum"] == 0.9
    assert set(sgd.params[3].tensors) == {"momentum_buffer"}
    assert torch.equal(ckpt.tensor("sgd/state/3/momentum_buffer"), raw["sgd"]["state"][3]["momentum_buffer"])


def test_optimizer_param_names_are_used_when_saved(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD([{"params": [model.weight], "param_names": ["weight"]},
                           {"params": [model.bias], "param_names": ["bias"], "lr": 0.5}], lr=0.1)
    path = tmp_path / "opt.pt"
    torch.save(opt.state_dict(), path)
    info = open_checkpoint(path).optimizers[0]
    assert info.names_from == "param_names"
    assert [(p.id, p.name, p.group) for p in info.params] == [(0, "weight", 0), (1, "bias", 1)]
    assert info.param_groups[1]["lr"] == 0.5


def test_safetensors_single(zoo: dict[str, Path]) -> None:
    ckpt = open_checkpoint(zoo["safetensors"])
    ref = load_file(zoo["safetensors"])
    assert ckpt.format is CheckpointFormat.SAFETENSORS
    assert ckpt.other == {"__metadata__/format": "pt"}
    assert set(ckpt.tensors) == set(ref)
    for key, t in ref.items():
        assert ckpt.tensors[key].shape == tuple(t.shape)
        assert torch.equal(ckpt.tensor(key), t)


def test_safetensors_sharded_through_index(zoo: dict[str, Path]) -> None:
    ckpt = open_checkpoint(zoo["sharded"])
    assert ckpt.format is CheckpointFormat.SAFETENSORS_SHARDED
    assert len(ckpt.files) == 3
    sd = torch.load(zoo["state_dict"], weights_only=True)
    assert set(ckpt.tensors) == set(sd)
    for key, t in sd.items():
        assert torch.equal(ckpt.tensor(key), t)


def test_safetensors_dtypes_and_scalars(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "f16": torch.randn(7).half(),
        "i64": torch.arange(6).reshape(2, 3),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, path)
    ckpt = open_checkpoint(path)
    for key, t in tensors.items():
        got = ckpt.tensor(key)
        assert got.dtype == t.dtype and got.shape == t.shape and torch.equal(got, t)


@pytest.mark.parametrize("claim_end", [1024, 20])
def test_lying_safetensors_header_is_precise(tmp_path: Path, claim_end: int) -> None:
    path = lying_safetensors(tmp_path / "lie.safetensors", claim_end=claim_end)
    with pytest.raises(UnreadableCheckpoint) as err:
        open_checkpoint(path)
    assert err.value.status == 422
    assert err.value.extra["tensor"] == "w"
    assert f"data ends at byte {claim_end}" in err.value.message
    assert "only 16 bytes" in err.value.message


def test_safetensors_header_length_past_end(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(UnreadableCheckpoint, match=r"claims 1000000000 bytes but only 2 follow"):
        open_checkpoint(path)


def test_safetensors_wrong_span_is_precise(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "span.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    with pytest.raises(UnreadableCheckpoint, match=r"span 8 bytes but shape \[3\] of float32 needs 12"):
        open_checkpoint(path)


def test_sharded_index_refuses_paths_and_missing_shards(tmp_path: Path, zoo: dict[str, Path]) -> None:
    bad = tmp_path / "escape.index.json"
    bad.write_text(json.dumps({"weight_map": {"w": "../two_layer.safetensors"}}))
    with pytest.raises(UnreadableCheckpoint, match="plain file names beside the index"):
        open_checkpoint(bad)
    missing = tmp_path / "missing.index.json"
    missing.write_text(json.dumps({"weight_map": {"w": "nowhere.safetensors"}}))
    with pytest.raises(UnreadableCheckpoint, match=r"shard nowhere\.safetensors is missing"):
        open_checkpoint(missing)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated", "starts like a zip archive (torch.save) but cannot be read"),
        ("truncated_safetensors", "truncated file or lying header"),
        ("random", "is not a checkpoint: it starts with bytes 00 01 02 03"),
        ("empty", "is empty (0 bytes)"),
    ],
)
def test_broken_files_are_precise_errors(zoo: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(UnreadableCheckpoint) as err:
        open_checkpoint(zoo[name])
    assert message in err.value.message
    assert err.value.status == 422


def test_zip_with_corrupt_storage_size(tmp_path: Path, zoo: dict[str, Path]) -> None:
    import zipfile

    src = zipfile.ZipFile(zoo["state_dict"])
    path = tmp_path / "short_storage.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data/0"):
                data = data[:8]
            dst.writestr(info.filename, data)
    with pytest.raises(UnreadableCheckpoint, match=r"storage .*data/0 holds 8 bytes"):
        open_checkpoint(path)


def test_whole_pickled_model_is_refused_naming_globals(zoo: dict[str, Path]) -> None:
    with pytest.raises(UnsafeCheckpoint) as err:
        open_checkpoint(zoo["whole_model"])
    wanted = err.value.extra["globals"]
    assert "torchscope.examples.TwoLayerNet" in wanted
    assert "torch.nn.modules.linear.Linear" in wanted
    assert "--trust-pickle" in err.value.message
    # The same globals torch's own weights_only loader refuses (it names the first one it meets).
    with pytest.raises(pickle.UnpicklingError) as torch_err:
        torch.load(zoo["whole_model"], weights_only=True)
    assert any(g in str(torch_err.value) for g in wanted)


def test_trusted_whole_model_opens_with_its_state_dict(zoo: dict[str, Path]) -> None:
    ckpt = open_checkpoint(zoo["whole_model"], trusted_paths=[zoo["whole_model"].parent / "." / zoo["whole_model"].name])
    model = torch.load(zoo["whole_model"], weights_only=False)
    assert ckpt.trusted
    assert list(ckpt.state_dict_keys()) == list(model.state_dict())
    assert torch.equal(ckpt.tensor("fc2.bias"), model.fc2.bias)


@pytest.mark.parametrize("name", ["malicious", "malicious_pickle"])
def test_malicious_pickle_is_refused_and_never_runs(zoo: dict[str, Path], name: str) -> None:
    marker = zoo["marker"]
    # Refused as is, and refused when OTHER files are trusted.
    for trusted in ([], [zoo["whole_model"]], [zoo["training"], zoo["state_dict"]]):
        with pytest.raises(UnsafeCheckpoint) as err:
            open_checkpoint(zoo[name], trusted_paths=trusted)
        assert err.value.extra["globals"] == ["posix.system"]
        assert "posix.system" in err.value.message
    store = CheckpointStore(trusted_paths=[zoo["whole_model"]])
    store.open_startup([zoo[name]])
    assert store.failures and "posix.system" in store.failures[0].message
    assert not marker.exists()


def test_pickle_globals_never_executes_and_finds_stack_globals() -> None:
    class Marker:
        pass

    data = pickle.dumps({"a": [1, 2], "od": __import__("collections").OrderedDict()}, protocol=4)
    assert pickle_globals(data) == ["collections.OrderedDict"]
    assert pickle_globals(pickle.dumps(set(), protocol=2)) == ["builtins.set"]  # py2 name __builtin__ mapped
    with pytest.raises(UnreadableCheckpoint, match="corrupt or truncated"):
        pickle_globals(data[:-5])


def test_restricted_unpickler_refuses_what_the_scan_missed() -> None:
    # find_class is the real gate: even a global that slips past the scan is never imported.
    unpickler = StubUnpickler(__import__("io").BytesIO(b"cposix\nsystem\n."), ck.allowed_globals())
    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system is not allowed"):
        unpickler.load()


def test_legacy_format(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    sd = {"w": torch.randn(3, 2), "b": torch.arange(4)}
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    ckpt = open_checkpoint(path)
    assert ckpt.format is CheckpointFormat.TORCH_LEGACY
    assert torch.equal(ckpt.tensor("w"), sd["w"])


def test_tied_weights_share_storage(tmp_path: Path) -> None:
    from torchscope.examples import TinyTransformerLM

    path = tmp_path / "lm.pt"
    torch.save(TinyTransformerLM().state_dict(), path)
    ckpt = open_checkpoint(path)
    assert ["tok_emb.weight", "lm_head.weight"] in ckpt.aliases()
    by = ckpt.by_dtype()["float32"]
    assert by["tensors"] == len(ckpt.tensors)
    assert by["bytes"] == sum(i.bytes for i in ckpt.tensors.values()) - ckpt.tensors["lm_head.weight"].bytes


def test_unknown_tensor_and_store_ids(zoo: dict[str, Path]) -> None:
    store = CheckpointStore()
    a = store.open(zoo["state_dict"])
    b = store.open(zoo["state_dict"])
    assert (a.id, b.id) == ("two_layer-pth", "two_layer-pth-2")
    with pytest.raises(NotFound):
        a.tensor("nope")
    with pytest.raises(NotFound):
        store.get("nope")


def test_data_dir_refuses_escapes(tmp_path: Path, zoo: dict[str, Path]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.pth").write_bytes(zoo["state_dict"].read_bytes())
    (data / "link.pth").symlink_to(zoo["state_dict"])  # points outside the data dir
    assert resolve_in_data_dir(data, "ok.pth") == (data / "ok.pth").resolve()
    for bad in ["../zoo/two_layer.pth", "link.pth", str(zoo["state_dict"]), "sub/../../x.pth"]:
        with pytest.raises((InvalidRequest, NotFound)):
            resolve_in_data_dir(data, bad)
    with pytest.raises(InvalidRequest, match="outside the data directory"):
        resolve_in_data_dir(data, "link.pth")
    with pytest.raises(InvalidRequest, match="--data-dir"):
        resolve_in_data_dir(None, "ok.pth")
    assert [f["path"] for f in ck.list_data_dir(data)] == ["ok.pth"]


def test_parameters_and_mixed_dtypes_in_a_torch_archive(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 3)
    saved = {
        **dict(model.named_parameters()),  # nn.Parameter objects: _rebuild_parameter
        "half": torch.randn(5).half(),
        "bf16": torch.randn(2, 2).to(torch.bfloat16),
        "int8": torch.arange(-4, 4, dtype=torch.int8),
        "view": torch.arange(12.0).reshape(3, 4)[1:, ::2],  # a strided view into a bigger storage
        "scalar": torch.tensor(2.5, dtype=torch.float64),
    }
    path = tmp_path / "mixed.pt"
    torch.save(saved, path)
    ckpt = open_checkpoint(path)
    assert ckpt.notes == []  # metadata came from the restricted unpickler, not torch.load
    for key, t in saved.items():
        info = ckpt.tensors[key]
        assert (info.shape, info.dtype) == (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        assert torch.equal(ckpt.tensor(key), t.detach())


def test_checkpoint_saved_on_cuda_opens_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a GPU training run writes: storages tagged "cuda:0". torch.save asks location_tag for it.
    import torch.serialization as ser

    monkeypatch.setattr(ser, "location_tag", lambda storage: "cuda:0")
    sd = {"w": torch.randn(3, 3)}
    path = tmp_path / "gpu.pt"
    torch.save(sd, path)
    monkeypatch.undo()
    ckpt = open_checkpoint(path)
    assert ckpt.tensors["w"].shape == (3, 3)
    got = ckpt.tensor("w")
    assert got.device.type == "cpu" and torch.equal(got, sd["w"])


def test_constructs_we_do_not_stub_fall_back_to_torch_weights_only(tmp_path: Path) -> None:
    saved = {"sparse": torch.eye(3).to_sparse(), "dense": torch.ones(2)}
    path = tmp_path / "sparse.pt"
    torch.save(saved, path)
    ckpt = open_checkpoint(path)
    assert any("torch.load(weights_only=True, mmap=True)" in n for n in ckpt.notes)
    assert ckpt.tensors["sparse"].shape == (3, 3)
    assert torch.equal(ckpt.tensor("sparse").to_dense(), torch.eye(3))
    assert torch.equal(ckpt.tensor("dense"), saved["dense"])


def test_non_tensor_values_of_every_allowed_kind(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(
        {"w": torch.ones(1), "size": torch.Size([2, 3]), "dtype": torch.float16, "device": torch.device("cpu"),
         "tags": {"a"}, "blob": b"\x00\x01", "z": 1 + 2j, "hist": list(range(100)), "nested": {"deep": {"x": None}}},
        path,
    )
    other = open_checkpoint(path).other
    assert other["size"] == [2, 3] and other["dtype"] == "torch.float16" and other["device"] == "cpu"
    assert other["tags"] == ["a"] and other["z"] == "(1+2j)" and other["nested/deep/x"] is None
    assert other["hist"][:3] == [0, 1, 2] and other["hist"][-1] == "… 50 more"
    json_text = __import__("json").dumps(other)  # everything is JSON-able
    assert "blob" in json_text


def test_mutated_files_are_precise_errors_never_crashes(zoo: dict[str, Path], tmp_path: Path) -> None:
    """Random byte flips in archives, pickles and headers: an InspectError or a good open, nothing else."""
    import io
    import random
    import zipfile

    from torchscope.inspect.errors import InspectError

    rng = random.Random(5)

    def mutate(data: bytes, flips: int) -> bytes:
        b = bytearray(data)
        for _ in range(flips):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)

    src = zipfile.ZipFile(zoo["training"])
    members = [(i.filename, src.read(i)) for i in src.infolist()]
    st = zoo["safetensors"].read_bytes()
    n = int.from_bytes(st[:8], "little")
    out = tmp_path / "mutant"
    outcomes: dict[str, int] = {}
    for trial in range(160):
        kind = trial % 4
        if kind == 0:
            data = mutate(zoo["training"].read_bytes(), rng.randint(1, 8))
        elif kind == 1:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zw:
                for name, d in members:
                    zw.writestr(name, mutate(d, rng.randint(1, 4)) if name.endswith("data.pkl") else d)
            data = buf.getvalue()
        elif kind == 2:
            header = bytearray(st[8 : 8 + n])
            for _ in range(3):
                header[rng.randrange(len(header))] = rng.choice(b'0123456789[]{},":-')
            data = st[:8] + bytes(header) + st[8 + n :]
        else:
            data = mutate(st, rng.randint(1, 8))
        out.write_bytes(data)
        try:
            ckpt = open_checkpoint(out)
            for key in list(ckpt.tensors)[:3]:
                ckpt.tensor(key)
            outcomes["opened"] = outcomes.get("opened", 0) + 1
        except InspectError as err:
            assert 400 <= err.status < 500 and err.message
            outcomes["refused"] = outcomes.get("refused", 0) + 1
    assert outcomes.get("refused", 0) > 20  # the mutations really did break files
    assert not zoo["marker"].exists()
