"""state_dict export: both formats load with load_state_dict(strict=True) into a fresh model."""

from __future__ import annotations

import io

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
def test_roundtrip_strict(fmt: ExportFormat, factory: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = factory()
    exported = export_state_dict(model, fmt, "m")
    assert exported.filename == f"m.{fmt.value}"
    torch.manual_seed(1)
    fresh = factory()
    fresh.load_state_dict(load(exported.data, fmt), strict=True)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype, k


def test_tied_weights_survive_safetensors() -> None:
    model = TinyTransformerLM()
    sd = model.state_dict()
    assert sd["lm_head.weight"].data_ptr() == sd["tok_emb.weight"].data_ptr()
    # safetensors itself refuses the shared storage...
    from safetensors.torch import save

    with pytest.raises(RuntimeError, match="share memory"):
        save(dict(sd))
    # ...our dict keeps both keys with separate storage, so strict loading works
    safe = safetensors_dict(sd)
    assert set(safe) == set(sd)
    assert safe["lm_head.weight"].data_ptr() != safe["tok_emb.weight"].data_ptr()
    fresh = TinyTransformerLM()
    fresh.load_state_dict(
        safetensors_load(export_state_dict(model, ExportFormat.safetensors, "t").data)
    )
    assert fresh.lm_head.weight is fresh.tok_emb.weight
    assert torch.equal(fresh.tok_emb.weight, model.tok_emb.weight)


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
