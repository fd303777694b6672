"""Histogram counts and statistics, checked against numpy and torch directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import torchscope.inspect.histograms as H
from tests.fixtures.models import BufferKinds, LazyNet, TiedEmbeddingLM
from torchscope.inspect.errors import InvalidRequest, NotFound, NoValues
from torchscope.inspect.histograms import (
    batch,
    find_tensor,
    histograms,
    model_histograms,
    named_tensors,
    tensor_histogram,
)
from torchscope.inspect.histograms.pool import _get_pool
from torchscope.inspect.overview import tensor_table


def numpy_counts(tensor: torch.Tensor, edges: tuple[float, ...]) -> list[int]:
    values = tensor.detach().float().numpy().ravel()
    counts: list[int] = np.histogram(values, bins=np.asarray(edges))[0].tolist()
    return counts


CASES = {
    "normal": lambda: torch.randn(10_000),
    "ties_on_grid": lambda: torch.randint(-8, 9, (20_001,)).float() / 4,
    "constant": lambda: torch.full((7, 3), 0.1),
    "constant_large": lambda: torch.full((5,), 1e8),
    "int64": lambda: torch.arange(-50, 50),
    "bool": lambda: torch.tensor([True, False, True, True]),
    "num_batches_tracked": lambda: torch.tensor(7),
    "float16": lambda: torch.randn(3_000).half(),
    "bfloat16": lambda: torch.randn(3_000).bfloat16(),
    "float64": lambda: torch.randn(1_001, dtype=torch.float64) * 1e-3,
    "offset_narrow": lambda: torch.randn(300_001) * 1e-4 + 1000,
    "straddles_zero_wide": lambda: torch.tensor([-1.0, -1e-10, -0.0, 0.0, 1e-10, 1.0] * 11),
    "huge_range": lambda: torch.tensor([3e38, -3e38, 0.0, 1.0]),
    "subnormal_range": lambda: torch.tensor([1e-40, 2e-40, 0.0]),
    "few_floats_in_range": lambda: torch.tensor([1000.0, 1000.0001, 1000.0002, 1000.0003] * 3),
    "single": lambda: torch.tensor([2.5]),
    "multi_chunk": lambda: torch.randn(3 * (1 << 17) + 5),
    "multi_part": lambda: torch.randn(2 * (1 << 20) + 3) * 7 - 1,
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("bins", [1, 7, 64, 253, 254, 1024])
def test_counts_equal_numpy_histogram_on_the_returned_edges(case: str, bins: int) -> None:
    torch.manual_seed(0)
    tensor = CASES[case]()
    h = tensor_histogram("t", tensor, bins)
    assert len(h.edges) == bins + 1 and len(h.counts) == bins
    assert not h.sampled
    assert list(h.counts) == numpy_counts(tensor, h.edges)
    assert sum(h.counts) == tensor.numel()
    assert all(a <= b for a, b in zip(h.edges, h.edges[1:], strict=False))


def test_edges_span_min_to_max_and_are_near_uniform() -> None:
    tensor = torch.randn(50_000)
    h = tensor_histogram("t", tensor)
    assert h.edges[0] == tensor.min().item() and h.edges[-1] == tensor.max().item()
    width = (h.edges[-1] - h.edges[0]) / 64
    for i, e in enumerate(h.edges):
        assert e == pytest.approx(h.edges[0] + i * width, abs=width * 1e-5)


def test_many_random_tensors_in_one_batch_are_all_exact() -> None:
    rng = np.random.default_rng(1)
    named = []
    for i in range(60):
        n = int(rng.integers(1, 40_000))
        scale = 10 ** rng.uniform(-20, 20)
        values = rng.standard_normal(n) * scale + rng.normal() * 10 ** rng.uniform(-3, 3) * scale
        if i % 4 == 0:  # heavy ties
            values = (rng.integers(-3, 4, n) * scale).astype(np.float64)
        named.append((f"t{i}", torch.from_numpy(values.astype(np.float32))))
    for (_, tensor), h in zip(named, histograms(named, 37, stats=False), strict=True):
        assert list(h.counts) == numpy_counts(tensor, h.edges)


def test_nan_and_inf_are_counted_in_stats_not_bins() -> None:
    tensor = torch.tensor([0.0, float("nan"), float("inf"), -float("inf"), 3.0, -2.0, float("nan")])
    h = tensor_histogram("t", tensor, 4)
    assert h.stats.nan == 2 and h.stats.inf == 2
    assert sum(h.counts) == 3
    finite = np.array([0.0, 3.0, -2.0], dtype=np.float32)
    assert list(h.counts) == np.histogram(finite, bins=np.asarray(h.edges))[0].tolist()
    assert h.stats.min == -2.0 and h.stats.max == 3.0
    assert h.stats.mean == pytest.approx(finite.mean())
    assert h.stats.zeros == 1 and h.stats.zero_fraction == pytest.approx(1 / 7)


def test_all_nan_tensor_has_empty_bins_and_no_moments() -> None:
    h = tensor_histogram("t", torch.full((4,), float("nan")), 8)
    assert h.stats.nan == 4 and sum(h.counts) == 0 and h.stats.mean is None
    assert len(h.edges) == 9


def test_empty_tensor() -> None:
    h = tensor_histogram("t", torch.empty(0, 3), 5)
    assert h.numel == 0 and h.counts == (0,) * 5 and h.stats.min is None
    assert h.to_dict()["stats"]["zero_fraction"] is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64, torch.int32])
def test_stats_equal_numpy(dtype: torch.dtype) -> None:
    torch.manual_seed(3)
    tensor = (torch.randn(40_000) * 3 + 0.5).to(dtype)
    tensor.view(-1)[::7] = 0
    values = tensor.float().numpy().astype(np.float64)
    s = tensor_histogram("t", tensor).stats
    assert s.mean == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
    assert s.std == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert s.std == pytest.approx(
        tensor.float().std().item(), rel=1e-5
    )  # torch's default correction
    assert s.min == values.min() and s.max == values.max()
    assert s.mean_abs == pytest.approx(np.abs(values).mean(), rel=1e-9)
    assert s.l2 == pytest.approx(np.sqrt((values**2).sum()), rel=1e-9)
    assert s.zeros == int((values == 0).sum())
    assert s.zero_fraction == pytest.approx(s.zeros / values.size)
    qs = np.quantile(tensor.float().numpy(), H.DEFAULT_QUANTILES)
    assert list(s.quantiles.values()) == [float(q) for q in qs]
    assert list(s.quantiles) == ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]


def test_constant_tensor_has_zero_std_exactly() -> None:
    s = tensor_histogram("t", torch.full((1000,), 0.1)).stats
    assert s.std == 0.0 and s.mean == pytest.approx(0.1) and s.min == s.max


def test_to_dict_contract() -> None:
    d = tensor_histogram("fc.weight", torch.randn(3, 4), 10).to_dict()
    assert set(d) == {"name", "numel", "dtype", "shape", "edges", "counts", "stats", "sampled"}
    assert d["name"] == "fc.weight" and d["numel"] == 12 and d["dtype"] == "float32"
    assert d["shape"] == [3, 4] and len(d["edges"]) == 11 and len(d["counts"]) == 10
    assert set(d["stats"]) == {
        "mean",
        "std",
        "min",
        "max",
        "mean_abs",
        "l2",
        "zeros",
        "zero_fraction",
        "nan",
        "inf",
        "quantiles",
    }
    assert all(isinstance(c, int) for c in d["counts"])


def test_large_tensors_are_sampled_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "SAMPLE_THRESHOLD", 10_000)
    monkeypatch.setattr(batch, "SAMPLE_SIZE", 4_096)
    tensor = torch.randn(50_000)
    tensor[0] = 0
    h = tensor_histogram("big", tensor)
    again = tensor_histogram("big", tensor)
    assert h.sampled and sum(h.counts) == 4_096
    assert h.counts == again.counts  # fixed seed: same tensor, same answer
    # Exact over all elements even when sampled:
    assert h.stats.min == tensor.min().item() and h.stats.max == tensor.max().item()
    assert h.edges[0] == h.stats.min and h.edges[-1] == h.stats.max
    assert h.stats.mean == pytest.approx(tensor.double().mean().item(), rel=1e-9)
    assert h.stats.zeros == 1
    small = tensor_histogram("small", torch.randn(10_000))
    assert not small.sampled


def test_meta_and_lazy_tensors_have_no_values() -> None:
    with pytest.raises(NoValues, match="meta"):
        tensor_histogram("w", torch.empty(3, device="meta"))
    lazy = LazyNet()
    with pytest.raises(NoValues, match="lazy") as err:
        tensor_histogram("lazy.weight", lazy.lazy.weight)
    assert err.value.status == 409 and err.value.extra["tensor"] == "lazy.weight"


@pytest.mark.parametrize("bins", [0, -3, H.MAX_BINS + 1, True, 2.5])
def test_bad_bins_are_refused(bins: object) -> None:
    with pytest.raises(InvalidRequest, match="bins") as err:
        tensor_histogram("t", torch.randn(3), bins)  # type: ignore[arg-type]
    assert err.value.status == 422


def test_reading_never_changes_the_model() -> None:
    model = BufferKinds()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_histograms(model)
    tensor_table(model)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_tied_weights_listed_once_with_alias() -> None:
    model = TiedEmbeddingLM()
    rows = named_tensors(model)
    names = [r.name for r in rows]
    assert names.count("embed.weight") == 1 and "head.weight" not in names
    tied = next(r for r in rows if r.name == "embed.weight")
    assert tied.aliases == ("head.weight",)
    assert find_tensor(model, "head.weight") is model.embed.weight
    with pytest.raises(NotFound):
        find_tensor(model, "nope.weight")


def test_model_histograms_cover_every_tensor_with_values() -> None:
    model = TiedEmbeddingLM()
    hs = model_histograms(model, 16)
    assert [h.name for h in hs] == [r.name for r in named_tensors(model)]
    for h in hs:
        tensor = find_tensor(model, h.name)
        assert list(h.counts) == numpy_counts(tensor, h.edges)
        assert not math.isnan(h.stats.std or 0.0)


def test_worker_pool_leaves_torch_threading_of_other_threads_alone() -> None:
    import threading

    tensor_histogram("t", torch.randn(1 << 20))
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [torch.get_num_threads()]
    # ...while the pool's own workers stay single-threaded (they are the parallelism)
    assert _get_pool().submit(torch.get_num_threads).result() == 1


def test_reused_statistics_give_the_same_answer_as_a_fresh_histogram() -> None:
    t = torch.randn(50_000)
    first = tensor_histogram("t", t, 64)
    rebinned = tensor_histogram("t", t, 17, stats=first.stats)
    assert rebinned == tensor_histogram("t", t, 17)
