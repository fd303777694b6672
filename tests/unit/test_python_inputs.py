"""torchscope.show(model, inputs=...): every form a Python user hands over, resolved like --inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchscope.inspect.errors import InspectError
from torchscope.inspect.forward import Source, python_inputs, resolve_inputs, run_forward


class TwoInputs(nn.Module):
    """image and tokens, the second also by keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.embed = nn.Embedding(10, 2)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.conv(image).mean(dim=(2, 3)) + self.embed(tokens).mean(dim=1)


IMAGE, TOKENS = torch.zeros(1, 1, 6, 6), torch.ones(1, 4, dtype=torch.long)


@pytest.mark.parametrize(
    "given",
    [
        (IMAGE, TOKENS),
        [IMAGE, TOKENS],
        ((IMAGE,), {"tokens": TOKENS}),
        {"image": IMAGE, "tokens": TOKENS},
        lambda: (IMAGE, TOKENS),
        lambda model: (IMAGE, TOKENS.clamp(max=model.embed.num_embeddings - 1)),
        {"args": [{"shape": [1, 1, 6, 6]}, {"shape": [1, 4], "dtype": "int64", "high": 10}]},
        '{"args": [{"shape": [1, 1, 6, 6]}, {"shape": [1, 4], "dtype": "int64", "high": 10}]}',
    ],
)
def test_every_form_gives_the_same_forward(given: object) -> None:
    model = TwoInputs()
    resolved = python_inputs(given, model)
    assert resolved is not None
    assert resolve_inputs(model, cli=resolved) is resolved  # served like --inputs: the page can still edit them
    answer = run_forward(model, resolved).to_dict()
    assert [c["path"] for c in answer["calls"]] == ["", "conv", "embed"]
    assert answer["calls"][0]["outputs"]["shape"] == [1, 2]
    assert resolved.source is Source.python


def test_no_inputs_and_unfit_inputs() -> None:
    assert python_inputs(None, TwoInputs()) is None
    with pytest.raises(InspectError, match="shape"):
        python_inputs({"args": [{"shape": [-1, 3]}]}, TwoInputs())
