"""The compare report equals what load_state_dict says; loading keeps reset exact; diffs equal numpy."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file, save_model
from torch import nn

from tests.fixtures.checkpoints import ddp_state_dict, trained_two_layer
from tests.fixtures.models import BufferKinds, Containers, SharedBlockTwice
from torchscope.examples import SmallCNN, TinyTransformerLM, TwoLayerNet
from torchscope.inspect.checkpoints import open_checkpoint
from torchscope.inspect.compare import (
    Entry,
    LoadRefused,
    checkpoint_report,
    load_into_model,
    load_report,
)
from torchscope.inspect.diff import change_stats, diff_checkpoint_model, diff_checkpoints
from torchscope.inspect.optimizer_names import optimizer_names
from torchscope.inspect.registry import ModelRegistry


def entries_of(sd: dict[str, object]) -> dict[str, Entry]:
    return {
        k: Entry(tuple(v.shape), str(v.dtype).removeprefix("torch."))
        if isinstance(v, torch.Tensor)
        else Entry(None, None, repr(type(v)))
        for k, v in sd.items()
    }


def torch_says(model: nn.Module, sd: dict[str, object]) -> str | None:
    """The RuntimeError text of a strict load, on a deep copy so the fixture model is untouched."""
    import copy

    try:
        copy.deepcopy(model).load_state_dict(sd, strict=True)
    except RuntimeError as err:
        return str(err)
    return None


class WithExtraState(nn.Module):
    """A module that saves extra state: load_state_dict expects an ``_extra_state`` key."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.k = 0

    def get_extra_state(self) -> object:
        return {"k": self.k}

    def set_extra_state(self, state: object) -> None:
        self.k = state["k"]  # type: ignore[index]


def _cases() -> list[tuple[str, nn.Module, dict[str, object]]]:
    torch.manual_seed(0)
    two = TwoLayerNet()
    sd = two.state_dict()
    cnn = SmallCNN()
    cnn_sd = cnn.state_dict()
    lm = TinyTransformerLM()
    lm_sd = lm.state_dict()
    bk = BufferKinds()
    cont = Containers()
    shared = SharedBlockTwice()
    cases: list[tuple[str, nn.Module, dict[str, object]]] = [
        ("exact", two, dict(sd)),
        ("missing", two, {k: v for k, v in sd.items() if k != "fc2.bias"}),
        ("unexpected", two, {**sd, "fc3.weight": torch.zeros(2), "fc1.extra": torch.zeros(1), "fc1.weight.x": torch.zeros(1)}),
        ("shape", two, {**sd, "fc1.weight": torch.zeros(21, 10), "fc2.bias": torch.zeros(3)}),
        ("dtype_is_not_an_error", two, {k: v.half() for k, v in sd.items()}),
        ("ddp_prefix", two, ddp_state_dict(two)),
        ("lightning_prefix", two, {f"model.{k}": v for k, v in sd.items()}),
        ("compile_prefix", two, {f"_orig_mod.{k}": v for k, v in sd.items()}),
        ("mixed", cnn, {**{k: v for k, v in list(cnn_sd.items())[3:]}, "features.0.0.weight": torch.zeros(1, 3, 3, 3), "head.w": torch.zeros(1)}),
        ("bn_no_num_batches_tracked", cnn, {k: v for k, v in cnn_sd.items() if "num_batches_tracked" not in k}),
        ("tied_saved_once", lm, {k: v for k, v in lm_sd.items() if k != "lm_head.weight"}),
        ("non_persistent_saved", lm, {**lm_sd, "causal_mask": torch.zeros(64, 64)}),
        ("buffers", bk, {**bk.state_dict(), "cache": torch.zeros(3, 3)}),
        ("containers", cont, {k: v for k, v in cont.state_dict().items() if k != "plist.1"}),
        ("shared_module_two_paths", shared, {k: v for k, v in shared.state_dict().items() if not k.startswith("second.")}),
        ("scalar_bc_rule", nn.Module(), {}),
        ("non_tensor_value", two, {**sd, "fc1.bias": 3}),
        ("empty", two, {}),
        ("instancenorm_running_stats", nn.Sequential(nn.InstanceNorm1d(3)), {"0.running_mean": torch.zeros(3), "0.running_var": torch.ones(3)}),
        ("extra_state_missing", WithExtraState(), {"lin.weight": torch.zeros(2, 2), "lin.bias": torch.zeros(2)}),
        ("extra_state_present", WithExtraState(), {"lin.weight": torch.zeros(2, 2), "lin.bias": torch.zeros(2), "_extra_state": {"k": 1}}),
        ("extra_state_unexpected", two, {**sd, "fc1._extra_state": 3}),
    ]
    return cases


@pytest.mark.parametrize(("label", "model", "sd"), _cases(), ids=[c[0] for c in _cases()])
def test_report_equals_torch(label: str, model: nn.Module, sd: dict[str, object]) -> None:
    report = load_report(model, entries_of(sd), getattr(sd, "_metadata", None))
    assert report.torch_message(type(model).__name__) == torch_says(model, sd)
    # and the non-strict lists equal torch's _IncompatibleKeys (when nothing else raises)
    if not report.errors:
        import copy

        result = copy.deepcopy(model).load_state_dict(sd, strict=False)
        assert report.missing == result.missing_keys
        assert report.unexpected == result.unexpected_keys


def test_metadata_versions_change_batchnorm_rule(tmp_path: Path) -> None:
    # A torch.save'd state_dict carries _metadata (BatchNorm version 2): a missing counter IS reported then.
    cnn = SmallCNN()
    sd = cnn.state_dict()
    for k in [k for k in sd if "num_batches_tracked" in k]:
        del sd[k]
    path = tmp_path / "cnn.pt"
    torch.save(sd, path)
    ckpt = open_checkpoint(path)
    assert ckpt.state_dict_metadata and ckpt.state_dict_metadata["features.0.1"]["version"] == 2
    report = load_report(cnn, {k: Entry(i.shape, i.dtype) for k, i in ckpt.state_dict_keys().items()}, ckpt.state_dict_metadata)
    loaded = torch.load(path, weights_only=True)
    assert report.torch_message("SmallCNN") == torch_says(cnn, loaded)
    assert report.missing == [k for k in cnn.state_dict() if "num_batches_tracked" in k]
    assert [h.kind for h in report.hints] == ["num_batches_tracked"]


def test_zero_dim_backward_compat_rule() -> None:
    class Scalar(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s = nn.Parameter(torch.tensor(1.0))

    m = Scalar()
    for sd in ({"s": torch.ones(1)}, {"s": torch.ones(2)}, {"s": torch.ones(1, 1)}):
        assert load_report(m, entries_of(sd)).torch_message("Scalar") == torch_says(m, sd)


@pytest.mark.parametrize(
    ("prefix", "cause"),
    [("module.", "DataParallel"), ("model.", "Lightning"), ("_orig_mod.", "torch.compile")],
)
def test_prefix_hints(prefix: str, cause: str) -> None:
    model = TwoLayerNet()
    sd = {f"{prefix}{k}": v for k, v in model.state_dict().items()}
    report = load_report(model, entries_of(sd))
    hint = report.hints[0]
    assert hint.kind == "strip_prefix" and hint.fix == {"strip_prefix": prefix}
    assert cause in hint.message


def test_add_prefix_and_tied_and_non_persistent_hints() -> None:
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = TwoLayerNet()

    inner = TwoLayerNet().state_dict()
    report = load_report(Wrapped(), entries_of(inner))
    assert report.hints[0].fix == {"add_prefix": "backbone."}

    lm = TinyTransformerLM()
    sd = {k: v for k, v in lm.state_dict().items() if k != "lm_head.weight"}
    kinds = {h.kind: h for h in load_report(lm, entries_of(sd)).hints}
    assert "lm_head.weight (tied to tok_emb.weight)" in kinds["tied_weights"].message

    sd2 = {**lm.state_dict(), "causal_mask": torch.zeros(64, 64)}
    kinds2 = {h.kind for h in load_report(lm, entries_of(sd2)).hints}
    assert "non_persistent_buffer" in kinds2


def _served(module: nn.Module) -> object:
    return ModelRegistry().add(type(module).__name__, "test", module)


def test_load_strict_then_reset_restores_original(tmp_path: Path) -> None:
    model, _, _ = trained_two_layer(seed=1)
    path = tmp_path / "trained.pt"
    torch.save(model.state_dict(), path)
    ckpt = open_checkpoint(path)
    target = TwoLayerNet()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    loaded = _served(target)
    version = loaded.version  # type: ignore[attr-defined]
    result = load_into_model(ckpt, loaded, strict=True)  # type: ignore[arg-type]
    assert result["loaded"] == 4 and result["missing"] == [] and loaded.modified  # type: ignore[attr-defined]
    assert loaded.version > version  # type: ignore[attr-defined]  # memoised structure views invalidated
    for k, v in model.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)
    loaded.reset()  # type: ignore[attr-defined]
    for k, v in before.items():
        assert torch.equal(target.state_dict()[k], v)


def test_strict_load_refused_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ddp.pt"
    torch.save(ddp_state_dict(TwoLayerNet()), path)
    ckpt = open_checkpoint(path)
    target = TwoLayerNet()
    loaded = _served(target)
    with pytest.raises(LoadRefused) as err:
        load_into_model(ckpt, loaded, strict=True)  # type: ignore[arg-type]
    assert err.value.status == 409
    assert not loaded.modified  # type: ignore[attr-defined]
    assert err.value.extra["report"]["hints"][0]["fix"] == {"strip_prefix": "module."}
    # the suggested fix loads it
    result = load_into_model(ckpt, loaded, strict=True, strip_prefix="module.")  # type: ignore[arg-type]
    assert result["missing"] == [] and result["loaded"] == 4
    assert checkpoint_report(ckpt, loaded, strip_prefix="module.").strict_ok  # type: ignore[arg-type]


def test_non_strict_load_skips_shape_mismatches_and_reports(tmp_path: Path) -> None:
    sd = TwoLayerNet().state_dict()
    sd["fc2.weight"] = torch.zeros(3, 20)
    del sd["fc2.bias"]
    path = tmp_path / "partial.safetensors"
    save_file(sd, path)
    target = TwoLayerNet()
    old_fc2 = target.fc2.weight.detach().clone()
    loaded = _served(target)
    result = load_into_model(open_checkpoint(path), loaded, strict=False)  # type: ignore[arg-type]
    assert result["skipped"] == ["fc2.weight"]
    assert result["missing"] == ["fc2.weight", "fc2.bias"]  # torch's own non-strict answer for what it got
    assert torch.equal(target.fc1.weight, sd["fc1.weight"])
    assert torch.equal(target.fc2.weight, old_fc2)


def test_tied_safetensors_loads_non_strict(tmp_path: Path) -> None:
    lm = TinyTransformerLM()
    path = tmp_path / "lm.safetensors"
    save_model(lm, path)  # drops the tied duplicate
    target = TinyTransformerLM()
    loaded = _served(target)
    report = checkpoint_report(open_checkpoint(path), loaded)  # type: ignore[arg-type]
    assert report.missing == ["lm_head.weight"] or report.missing == ["tok_emb.weight"]
    load_into_model(open_checkpoint(path), loaded, strict=False)  # type: ignore[arg-type]
    assert torch.equal(target.lm_head.weight, lm.lm_head.weight)


def test_optimizer_names_by_order_is_a_guess(tmp_path: Path) -> None:
    model, adamw, _ = trained_two_layer()
    path = tmp_path / "train.pt"
    torch.save({"model": model.state_dict(), "optimizer": adamw.state_dict()}, path)
    ckpt = open_checkpoint(path)
    opt = ckpt.optimizers[0]
    mapping = optimizer_names(opt, ckpt, TwoLayerNet())
    assert mapping["names"] == {0: "fc1.weight", 1: "fc1.bias", 2: "fc2.weight", 3: "fc2.bias"}
    assert mapping["warning"].startswith("guess") and set(mapping["status"].values()) == {"guess"}
    wrong = optimizer_names(opt, ckpt, nn.Sequential(nn.Linear(20, 10), nn.Linear(2, 20)))
    assert wrong["names"] == {} and set(wrong["status"].values()) == {"unknown"}  # shapes disagree: no names
    assert optimizer_names(opt, ckpt, nn.Linear(2, 2))["names"] == {}


def test_change_stats_equal_numpy() -> None:
    torch.manual_seed(0)
    a = torch.randn(300, 70)
    b = a + 0.01 * torch.randn(300, 70)
    stats = change_stats(a, b)
    x, y = a.double().numpy().ravel(), b.double().numpy().ravel()
    assert stats["max_abs"] == pytest.approx(np.abs(y - x).max(), rel=1e-12)
    assert stats["rel_l2"] == pytest.approx(np.linalg.norm(y - x) / np.linalg.norm(x), rel=1e-10)
    assert stats["cosine"] == pytest.approx(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)), rel=1e-10)
    assert change_stats(torch.zeros(3), torch.zeros(3)) == {"max_abs": 0.0, "rel_l2": 0.0, "cosine": None}
    assert change_stats(torch.zeros(0), torch.zeros(0))["rel_l2"] is None


def test_diff_two_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    a = TwoLayerNet().state_dict()
    b = OrderedDict((k, v.clone()) for k, v in a.items())
    b["fc1.weight"] += 0.5
    b["fc2.weight"] += 0.001
    b["fc2.bias"] = b["fc2.bias"].double()
    b["fc3.weight"] = torch.zeros(2)
    del b["fc1.bias"]
    b["fc2.weight"] = b["fc2.weight"]
    pa, pb = tmp_path / "a.pt", tmp_path / "b.safetensors"
    torch.save(a, pa)
    save_file(dict(b), pb)
    diff = diff_checkpoints(open_checkpoint(pa), open_checkpoint(pb))
    assert diff["added"] == ["fc3.weight"] and diff["removed"] == ["fc1.bias"]
    assert diff["retyped"] == [{"key": "fc2.bias", "a": "float32", "b": "float64"}]
    assert [r["key"] for r in diff["common"]] == ["fc1.weight", "fc2.weight", "fc2.bias"]  # sorted by change
    assert diff["common"][0]["max_abs"] == pytest.approx(0.5, rel=1e-6)
    assert diff["unchanged"] == 1


def test_diff_against_model_current_weights(tmp_path: Path) -> None:
    model = TwoLayerNet()
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        model.fc2.bias.add_(1.0)
    diff = diff_checkpoint_model(open_checkpoint(path), _served(model))  # type: ignore[arg-type]
    assert diff["common"][0]["key"] == "fc2.bias"
    assert diff["common"][0]["max_abs"] == pytest.approx(1.0)
    assert diff["unchanged"] == 3


def test_extra_state_is_loaded_through_set_extra_state(tmp_path: Path) -> None:
    src = WithExtraState()
    src.k = 5
    path = tmp_path / "extra.pt"
    torch.save(src.state_dict(), path)
    ckpt = open_checkpoint(path)
    target = WithExtraState()
    loaded = _served(target)
    assert checkpoint_report(ckpt, loaded).strict_ok  # type: ignore[arg-type]
    result = load_into_model(ckpt, loaded, strict=True)  # type: ignore[arg-type]
    assert result["missing"] == [] and target.k == 5
    assert torch.equal(target.lin.weight, src.lin.weight)


def test_num_batches_tracked_filled_in_by_torch_is_not_a_match(tmp_path: Path) -> None:
    # issue 8: a TwoLayerNet file against SmallCNN read "3 of 20 model keys match": the three
    # BatchNorm counters torch fills in when a state_dict has no _metadata, and nothing else.
    from safetensors.torch import load_file, save_file

    from torchscope.examples import SmallCNN
    from torchscope.inspect.compare import rank_models

    path = tmp_path / "two_layer.safetensors"
    save_file(TwoLayerNet().state_dict(), path)
    ckpt = open_checkpoint(path)
    cnn = SmallCNN()
    torch_says = cnn.load_state_dict(load_file(path), strict=False)
    assert not any(k.endswith("num_batches_tracked") for k in torch_says.missing_keys)  # torch filled them in
    report = checkpoint_report(ckpt, _served(cnn))  # type: ignore[arg-type]
    assert (report.matched, report.model_keys) == (3, 20)
    assert (report.matched_weights, report.matched_counters, report.counter_keys) == (0, 3, 3)
    registry = ModelRegistry()
    registry.add("cnn", "SmallCNN", SmallCNN())
    registry.add("mlp", "TwoLayerNet", TwoLayerNet())
    ranked = rank_models(ckpt, registry)
    assert [r["model"] for r in ranked] == ["mlp", "cnn"]  # the best fit first, not the first served
    assert ranked[0]["matched_weights"] == ranked[0]["weight_keys"] == 4 and ranked[1]["matched_weights"] == 0
