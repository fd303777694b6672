"""LoadedModel keeps exactly what it needs to restore the original weights bit for bit."""

from __future__ import annotations

import torch

from tests.fixtures.models import TiedEmbeddingLM
from torchscope import examples
from torchscope.inspect.registry import ModelRegistry


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict(keep_vars=False).items()}


def test_only_tensors_about_to_change_are_copied_and_reset_is_exact() -> None:
    loaded = ModelRegistry().add("m", "test", examples.TwoLayerNet())
    m = loaded.module
    before = snapshot(m)
    biases = [m.fc1.bias, m.fc2.bias]
    loaded.ensure_original(biases)
    assert set(loaded.original or {}) == {"fc1.bias", "fc2.bias"} and loaded.modified
    with torch.no_grad():
        for b in biases:
            b.add_(1.0)
    # a second change to one of them keeps the first original, and adds the new tensor
    loaded.ensure_original([m.fc1.bias, m.fc1.weight])
    with torch.no_grad():
        m.fc1.bias.mul_(5)
        m.fc1.weight.zero_()
    assert set(loaded.original or {}) == {"fc1.bias", "fc2.bias", "fc1.weight"}
    assert loaded.reset() == 3
    after = m.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert not loaded.modified and loaded.original is None


def test_tied_tensor_is_kept_once_under_its_first_name() -> None:
    loaded = ModelRegistry().add("m", "test", TiedEmbeddingLM())
    loaded.ensure_original([loaded.module.head.weight])
    assert set(loaded.original or {}) == {"embed.weight"}


def test_unknown_tensor_falls_back_to_keeping_everything() -> None:
    loaded = ModelRegistry().add("m", "test", examples.TwoLayerNet())
    loaded.ensure_original([torch.zeros(3)])  # not a tensor of this model
    assert set(loaded.original or {}) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_reset_invalidates_memoised_views() -> None:
    loaded = ModelRegistry().add("m", "test", examples.TwoLayerNet())
    loaded.memo("x", lambda: 1)
    version = loaded.version
    loaded.ensure_original()
    loaded.reset()
    assert loaded.version > version and loaded._memo == {}
