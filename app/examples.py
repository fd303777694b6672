"""Built-in example models: what ``torchscope serve`` shows with no SPEC.

Each teaches one classic lesson of ``nn.Module``; they are ordinary importable
code (``torchscope serve torchscope.examples:SmallCNN`` works too).
"""

from __future__ import annotations

import torch
from torch import nn


class PlainTensorScale(nn.Module):
    """Keeps its scale as a plain tensor attribute: not a parameter, not saved, not moved by .to()."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.scale = torch.ones(features)  # the mistake: should be nn.Parameter or a buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


class ParameterScale(nn.Module):
    """The same net with its scale as an ``nn.Parameter``: trained and saved."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


class TensorVsParameter(nn.Module):
    """A plain tensor attribute next to an nn.Parameter: only one is in parameters()."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.with_tensor = PlainTensorScale(features)
        self.with_parameter = ParameterScale(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.with_tensor(x) + self.with_parameter(x)


class MLP(nn.Module):
    """Two linear layers with a ReLU between them."""

    def __init__(self, d_in: int = 8, d_hidden: int = 16, d_out: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ResidualBlock(nn.Module):
    """A net inside a net: LayerNorm then an MLP, added back."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.mlp = MLP(d, 2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class NestedNet(nn.Module):
    """Nets nested in nets: named_modules() paths like blocks.1.mlp.fc2."""

    def __init__(self, d: int = 8, depth: int = 2) -> None:
        super().__init__()
        self.stem = nn.Linear(d, d)
        self.blocks = nn.Sequential(*[ResidualBlock(d) for _ in range(depth)])
        self.head = nn.Linear(d, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class PlainListOfLayers(nn.Module):
    """Layers in a plain Python list: invisible to parameters(), state_dict() and .to()."""

    def __init__(self, d: int = 8, n: int = 3) -> None:
        super().__init__()
        self.layers = [nn.Linear(d, d) for _ in range(n)]  # the mistake: use nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ModuleListOfLayers(nn.Module):
    """The same layers in nn.ModuleList: registered, trained and saved."""

    def __init__(self, d: int = 8, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ListVsModuleList(nn.Module):
    """Layers in a plain list next to the same layers in nn.ModuleList."""

    def __init__(self, d: int = 8, n: int = 3) -> None:
        super().__init__()
        self.plain_list = PlainListOfLayers(d, n)
        self.module_list = ModuleListOfLayers(d, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.plain_list(x) + self.module_list(x)


def conv_bn_block(c_in: int = 3, c_out: int = 8) -> nn.Sequential:
    """Conv + BatchNorm + ReLU in nn.Sequential: children() vs modules(), running stats as buffers."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TwoLayerNet(nn.Module):
    """Two linear layers: the model for per-layer learning rates (optimizer param groups)."""

    def __init__(self, d_in: int = 10, d_hidden: int = 20, d_out: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class SmallCNN(nn.Module):
    """A small CNN for 32x32 RGB images: conv blocks, pooling, a classifier."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_block(3, width),
            nn.MaxPool2d(2),
            conv_bn_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TinyTransformerLM(nn.Module):
    """A small transformer LM: tied input/output embeddings, a non-persistent causal-mask buffer."""

    def __init__(
        self, vocab_size: int = 256, d_model: int = 64, n_layers: int = 2, n_heads: int = 4, max_len: int = 64
    ) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Parameter(torch.zeros(max_len, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=4 * d_model, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one tensor, two names
        # Derived, not learned: recomputed on load, so kept out of state_dict().
        mask = torch.triu(torch.full((max_len, max_len), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb[:t]
        mask: torch.Tensor = self.causal_mask  # type: ignore[assignment]  # a registered buffer
        x = self.blocks(x, mask=mask[:t, :t], is_causal=True)
        out: torch.Tensor = self.lm_head(self.norm(x))
        return out


# What ``torchscope serve`` with no SPEC serves, in this order: (name, spec).
EXAMPLES: list[tuple[str, str]] = [
    ("TensorVsParameter", "torchscope.examples:TensorVsParameter"),
    ("NestedNet", "torchscope.examples:NestedNet"),
    ("ListVsModuleList", "torchscope.examples:ListVsModuleList"),
    ("conv_bn_block", "torchscope.examples:conv_bn_block"),
    ("TwoLayerNet", "torchscope.examples:TwoLayerNet"),
    ("SmallCNN", "torchscope.examples:SmallCNN"),
    ("TinyTransformerLM", "torchscope.examples:TinyTransformerLM"),
]
