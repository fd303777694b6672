"""Models for benchmarks, written here (no torchvision, no hub): ResNet-50-like, GPT-2-like, very wide."""

from __future__ import annotations

from torch import nn


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1, 3x3, 1x1 convs with BatchNorm, optional downsample."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else None
        )


def resnet50_like(num_classes: int = 1000) -> nn.Module:
    """The ResNet-50 layout (3, 4, 6, 3 bottlenecks): 25.6M parameters."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    c_in = 64
    for i, (n, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
        blocks = []
        for j in range(n):
            blocks.append(Bottleneck(c_in, width, stride=2 if j == 0 and i > 0 else 1))
            c_in = width * 4
        layers.append(nn.Sequential(*blocks))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


class GPT2Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)


class GPT2MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.act = nn.GELU()
        self.c_proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(0.1)


class GPT2Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = GPT2Attention(d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = GPT2MLP(d)


class GPT2Like(nn.Module):
    """GPT-2's module layout, lm_head tied to wte (small: 124M parameters; XL: 1.56B)."""

    def __init__(self, n_layer: int = 12, d: int = 768, vocab: int = 50257, n_ctx: int = 1024) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(GPT2Block(d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight


def gpt2_small() -> nn.Module:
    return GPT2Like(12, 768)


def gpt2_xl() -> nn.Module:
    return GPT2Like(48, 1600)


def wide_model(n_modules: int = 20_000) -> nn.Module:
    """``n_modules`` modules: Sequential blocks of (Linear, LayerNorm, ReLU)."""
    per_block = 4
    return nn.Sequential(
        *[nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.ReLU()) for _ in range((n_modules - 1) // per_block)]
    )


def hf_gpt2_small() -> nn.Module:
    """Hugging Face's GPT2LMHeadModel from its default config (GPT-2 small, random weights, no download).

    Needs ``transformers`` (not a dependency: benchmarks/pages.py measures it when it is installed).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    model: nn.Module = GPT2LMHeadModel(GPT2Config())
    return model
