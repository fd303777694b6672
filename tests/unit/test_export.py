"""state_dict export: .pt loads with load_state_dict(strict=True), .safetensors with load_model(strict=True)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as safetensors_load
from torch import nn

from tests.fixtures.models import BufferKinds, HalfPrecision, LazyNet
from torchscope.examples import SmallCNN, TinyTransformerLM
from torchscope.inspect.errors import NoValues
from torchscope.inspect.export import ExportFormat, export_state_dict, safetensors_dict


def load(data: bytes, fmt: ExportFormat) -> dict[str, torch.Tensor]:
    if fmt is ExportFormat.pt:
        sd: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), weights_only=True)
        return sd
    return safetensors_load(data)


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("factory", [TinyTransformerLM, SmallCNN, BufferKinds, HalfPrecision])
def test_roundtrip_strict(fmt: ExportFormat, factory: type[nn.Module], tmp_path: Path) -> None:
    from safetensors.torch import load_model

    torch.manual_seed(0)
    model = factory()
    exported = export_state_dict(model, fmt, "m")
    assert exported.filename == f"m.{fmt.value}"
    torch.manual_seed(1)
    fresh = factory()
    if fmt is ExportFormat.pt:
        fresh.load_state_dict(load(exported.data, fmt), strict=True)
    else:  # the way safetensors documents loading a model (tied weights stored once)
        (tmp_path / exported.filename).write_bytes(exported.data)
        load_model(fresh, str(tmp_path / exported.filename), strict=True)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype, k


def test_tied_weights_are_stored_once_as_save_model_does(tmp_path: Path) -> None:
    # GPT-2's .safetensors download was 652 MB instead of 498 MB: the tied embedding twice (issue 8).
    from safetensors.torch import load_model, save, save_model

    model = TinyTransformerLM()
    sd = model.state_dict()
    assert sd["lm_head.weight"].data_ptr() == sd["tok_emb.weight"].data_ptr()
    with pytest.raises(RuntimeError, match="share memory"):
        save(dict(sd))  # safetensors itself refuses the shared storage
    tensors, aliases = safetensors_dict(sd)
    assert aliases == {"tok_emb.weight": "lm_head.weight"}  # save_model keeps the first name in sorted order
    assert set(tensors) == set(sd) - {"tok_emb.weight"}
    data = export_state_dict(model, ExportFormat.safetensors, "t").data
    # what the safetensors library's own save_model writes: the same header (its metadata order is a
    # Rust HashMap's, so compare it parsed) and the same data bytes
    save_model(model, str(tmp_path / "ref.safetensors"), metadata={"format": "pt"})
    ref = (tmp_path / "ref.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert len(data) == len(ref) and data[8 + n :] == ref[8 + n :]
    assert json.loads(data[8 : 8 + n]) == json.loads(ref[8 : 8 + n])
    assert len(data) < sum(t.nbytes for t in sd.values())
    (tmp_path / "t.safetensors").write_bytes(data)
    fresh = TinyTransformerLM()
    missing, unexpected = load_model(fresh, str(tmp_path / "t.safetensors"), strict=True)
    assert not missing and not unexpected
    assert fresh.lm_head.weight is fresh.tok_emb.weight
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_a_partial_view_of_a_shared_storage_gets_its_own_copy() -> None:
    base = torch.arange(12.0)
    sd = {"whole": base, "half": base[6:], "same": base}
    tensors, aliases = safetensors_dict(sd)
    assert aliases == {"whole": "same"}  # "same" < "whole": the sorted-first complete name stays
    assert torch.equal(tensors["half"], base[6:]) and tensors["half"].untyped_storage().nbytes() == 6 * 4
    assert set(tensors) == {"same", "half"}


def test_non_persistent_buffers_are_not_exported() -> None:
    sd = load(
        export_state_dict(BufferKinds(), ExportFormat.safetensors, "b").data,
        ExportFormat.safetensors,
    )
    assert "cache" not in sd and "bn.num_batches_tracked" in sd


def test_lazy_and_meta_models_have_nothing_to_export() -> None:
    with pytest.raises(NoValues, match="lazy"):
        export_state_dict(LazyNet(), ExportFormat.pt, "l")
    with torch.device("meta"):
        meta = nn.Linear(3, 3)
    with pytest.raises(NoValues, match="meta"):
        export_state_dict(meta, ExportFormat.safetensors, "m")
