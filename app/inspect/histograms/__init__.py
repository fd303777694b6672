"""Histograms and summary statistics of a model's parameters and buffers.

Contract (what the API and the pages promise):

* ``counts`` are exact whenever ``sampled`` is false: they equal
  ``numpy.histogram(t.float().numpy(), bins=edges)[0]`` for the returned
  ``edges`` (numpy's rules: bins are ``[e_i, e_i+1)``, the last one is closed
  on the right). NaN and +-Inf are never binned; they are counted in
  ``stats.nan`` / ``stats.inf`` and left out of every other statistic.
* Values are read as ``t.float()`` (float32), whatever the tensor's dtype:
  integer and bool buffers work, float64 is rounded the way numpy would see it.
* Statistics over the finite values: ``mean``, ``std`` (torch's default,
  Bessel-corrected; ``None`` below two values), ``min``, ``max``, ``mean_abs``,
  ``l2`` (``sqrt(sum x^2)``), ``zeros`` (exact zeros, either sign) and
  ``zero_fraction`` (over all elements), accumulated in float64. ``quantiles``
  (numpy's default linear method) are computed only when asked for: they need a
  selection over every value and cost more than the rest together.

Sampling threshold: a tensor with more than ``SAMPLE_THRESHOLD`` elements
(2**27, about 134 M: larger than any single tensor of a 1B-parameter
transformer, smaller than a 7B model's embedding) is binned from a uniform
random sample of ``SAMPLE_SIZE`` (2**24) elements drawn with a fixed seed, so
the same tensor always gives the same answer. Then ``sampled`` is true, the
counts add up to the sample size, and quantiles come from the sample;
``numel``, ``min``/``max`` (hence the edges), the moments, ``zeros``, ``nan``
and ``inf`` are still computed over every element.

How it is made fast (target: all histograms of a 124M-parameter model, exact,
64 bins, <= 150 ms on two cores; ``benchmarks/histograms.py`` measures it next
to TensorBoard's ``add_histogram``):

* one ``aminmax`` pass per tensor, then a binning pass over cache-sized chunks
  spread over a small thread pool (torch releases the GIL in its kernels; each
  worker runs its ops single-threaded so the two cores do not fight);
* the bin of ``x`` is ``code(x) = trunc(fl32(fl32(x - min) * scale))``: two
  IEEE float32 ops, each correctly rounded and monotonic, so ``code`` is
  monotonic in ``x`` and the edge ``e_i`` can be defined as *the smallest
  float32 whose code is >= i*, found by an exact binary search over float32
  values. Computing the edges the way we bin is what makes the counts exact;
  the textbook ``min + i * width`` edges disagree with the binning on values
  within an ulp of an edge;
* codes are written as int16 and read back two at a time as int32, so
  ``bincount`` (the slow, scalar part) does half the increments.

The package, one job per file: ``records`` (the records and limits), ``values`` (what can be
binned), ``pool`` (worker threads and scratch), ``binning`` and ``edges`` (the exact float32
engine), ``stats`` (statistics), ``batch`` (many tensors in one go), ``model`` (a model's
distinct tensors and their histograms).
"""

from __future__ import annotations

from torchscope.inspect.histograms.batch import histograms, tensor_histogram
from torchscope.inspect.histograms.model import (
    NamedTensor,
    find_tensor,
    model_histograms,
    named_tensors,
)
from torchscope.inspect.histograms.pool import Pending
from torchscope.inspect.histograms.records import (
    DEFAULT_BINS,
    DEFAULT_QUANTILES,
    MAX_BINS,
    MIN_BINS,
    SAMPLE_SEED,
    SAMPLE_SIZE,
    SAMPLE_THRESHOLD,
    Histogram,
    TensorStats,
    quantile_key,
)
from torchscope.inspect.histograms.values import check_bins, check_values, has_values

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_QUANTILES",
    "MAX_BINS",
    "MIN_BINS",
    "SAMPLE_SEED",
    "SAMPLE_SIZE",
    "SAMPLE_THRESHOLD",
    "Histogram",
    "NamedTensor",
    "Pending",
    "TensorStats",
    "check_bins",
    "check_values",
    "find_tensor",
    "has_values",
    "histograms",
    "model_histograms",
    "named_tensors",
    "quantile_key",
    "tensor_histogram",
]
