"""The bucketed Weights overview: per-tensor statistics equal torch's, buckets are unions, grouping follows modules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmarks.zoo import GPT2Like, wide_model
from tests.fixtures.models import BufferKinds, HalfPrecision, LazyNet, TiedEmbeddingLM
from torchscope.inspect import overview as O


class Odd(nn.Module):
    """Non-finite values, an empty tensor, an integer buffer and one tensor above the small-tensor path."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Parameter(torch.randn(O._SMALL + 5))
        self.bad = nn.Parameter(torch.tensor([1.0, math.nan, -math.inf, 3.0, 0.0]))
        self.empty = nn.Parameter(torch.empty(0, 4))
        self.register_buffer("steps", torch.tensor(7))


def finite(t: torch.Tensor) -> torch.Tensor:
    x = t.detach().float().reshape(-1).double()
    return x[torch.isfinite(x)]


def test_every_tensor_statistic_equals_torch() -> None:
    model = nn.Sequential(BufferKinds(), LazyNet(), HalfPrecision(), Odd())
    table = O.tensor_table(model)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    assert list(table.names)[:4] == ["0.scale", "0.cache", "0.bn.weight", "0.bn.bias"]  # named_modules() order
    for i, name in enumerate(table.names):
        t = tensors[name]
        if name == "1.lazy.weight" or name == "1.lazy.bias":
            assert not table.summarised[i] and "lazy" in (table.notes[i] or "") and table.shapes[i] is None
            continue
        x = finite(t)
        assert table.summarised[i] and table.numel[i] == t.numel() and table.n[i] == x.numel()
        assert table.nan[i] == int(torch.isnan(t.float()).sum()) and table.inf[i] == int(torch.isinf(t.float()).sum())
        if not x.numel():
            assert math.isnan(table.mn[i]) and math.isnan(table.std[i])
            continue
        assert table.mn[i] == x.min().item() and table.mx[i] == x.max().item()
        assert table.s1[i] == pytest.approx(x.sum().item(), rel=1e-12, abs=1e-12)
        assert table.zeros[i] == int((x == 0).sum())
        if x.numel() > 1:
            assert table.std[i] == pytest.approx(x.std().item(), rel=1e-9, abs=1e-12)
    assert table.dtypes[table.names.index("2.b.weight")] == "bfloat16"


def test_a_bucket_is_the_union_of_its_tensors_and_buffers_are_apart() -> None:
    model = GPT2Like(n_layer=2, d=16, vocab=50, n_ctx=8)
    model.register_buffer("ones", torch.ones(3))
    table = O.tensor_table(model)
    ov = O.overview(table, max_points=5)
    assert ov["grouping"] == "module" and ov["depth"] == 1
    b = ov["buckets"]
    assert b["label"] == ["ones", "wte.weight", "wpe.weight", "h", "ln_f"]
    h = b["label"].index("h")
    values = torch.cat([finite(p) for n, p in model.named_parameters() if n.startswith("h.")])
    p = b["parameters"]
    assert p["tensors"][h] == sum(1 for n, _ in model.named_parameters() if n.startswith("h."))
    assert p["mean"][h] == pytest.approx(values.mean().item(), rel=1e-9)
    assert p["std"][h] == pytest.approx(values.std().item(), rel=1e-9)
    assert p["min"][h] == values.min().item() and p["max"][h] == values.max().item()
    # the buffer is summarised apart: no parameter statistics in its bucket
    assert b["buffers"]["mean"][0] == 1.0 and p["mean"][0] is None and b["name"][0] == "ones"


def test_gpt2_groups_by_block_and_zooms_to_single_tensors() -> None:
    table = O.tensor_table(GPT2Like(n_layer=12, d=8, vocab=20, n_ctx=4))
    assert len(table) == 148  # GPT-2's 148 distinct tensors (lm_head tied to wte)
    ov = O.overview(table, max_points=40, max_labels=20)
    assert ov["buckets"]["label"] == ["wte.weight", "wpe.weight", *[f"h.{i}" for i in range(12)], "ln_f"]
    assert ov["ticks"]["label"][2:4] == ["h.0", "h.1"] and len(ov["ticks"]["x"]) <= 20
    zoom = O.overview(table, start=2, stop=14, max_points=40)
    assert zoom["grouping"] == "tensor" and zoom["buckets"]["name"][0] == "h.0.ln_1.weight"
    assert zoom["buckets"]["start"] == list(range(2, 14))


def test_twenty_thousand_modules_fit_the_points_asked_for() -> None:
    table = O.tensor_table(wide_model(20_000))
    ov = O.overview(table, max_points=200, max_labels=15)
    b = ov["buckets"]
    assert ov["grouping"] == "modules" and 100 < len(b["start"]) <= 200 and len(ov["ticks"]["x"]) <= 15
    assert b["start"][0] == 0 and b["stop"][-1] == len(table) and b["stop"][:-1] == b["start"][1:]
    assert sum(b["parameters"]["tensors"]) == len(table)


def test_default_tensor_skips_constants_and_buffers() -> None:
    model = nn.Sequential(nn.LayerNorm(4), BufferKinds(), nn.Linear(4, 4))
    assert O.default_tensor(O.tensor_table(model)) == "2.weight"
    assert O.default_tensor(O.tensor_table(nn.LayerNorm(3))) == "weight"  # only constants: the first one
    assert O.default_tensor(O.tensor_table(LazyNet())) == "fixed.weight"


def test_search_matches_every_word_in_names_aliases_and_classes() -> None:
    table = O.tensor_table(TiedEmbeddingLM())
    assert [r["name"] for r in O.search(table, "HEAD")["items"]] == ["embed.weight"]  # via its alias
    assert O.search(table, "linear bias")["total"] == 1
    page = O.search(table, "", limit=2, offset=1)
    assert page["total"] == len(table) and [r["index"] for r in page["items"]] == [1, 2]
    assert O.search(table, "nothing-like-this")["items"] == []


def test_tensors_of_one_module_are_cut_into_runs() -> None:
    model = nn.Module()
    model.w = nn.ParameterList(nn.Parameter(torch.full((2,), float(i))) for i in range(100))  # type: ignore[assignment]
    ov = O.overview(O.tensor_table(model), 0, 100, max_points=10)
    b = ov["buckets"]
    assert ov["grouping"] == "range" and b["start"] == list(range(0, 100, 10))
    assert b["label"][0] == "w.0 … w.9" and b["parameters"]["mean"][1] == pytest.approx(14.5)
