"""Weights: per-tensor histograms + statistics, the bucketed whole-model overview, tensor search, the page.

HTTP contract (beside TensorBoard's ``[left, right, count]`` buckets, ours are ``edges`` + ``counts``):

* ``GET /api/models/{id}/histogram?tensor=&bins=``: one tensor, exact unless ``sampled``.
* ``GET /api/models/{id}/overview?start=&stop=&max_points=&max_labels=``: tensors ``[start, stop)``
  in depth order, in at most ``max_points`` buckets (see ``torchscope.inspect.overview``).
* ``GET /api/models/{id}/tensors?q=&limit=&offset=``: the tensor picker's search.

The page itself carries no per-tensor data: it fetches these, so its HTML is the same size
for 10 tensors and for 50,000.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from torchscope.inspect import histograms as H
from torchscope.inspect import overview as O
from torchscope.inspect.errors import NotFound
from torchscope.inspect.live import content_stamp
from torchscope.inspect.registry import VALUES, LoadedModel
from torchscope.web.deps import BinsQuery, ModelDep, render

router = APIRouter()

TensorQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1000,
        description="parameter or buffer name (aliases of tied weights work)",
    ),
]


def tensor_histogram(loaded: LoadedModel, tensor: str, bins: int) -> dict[str, Any]:
    """The one data function behind the histogram endpoint and the page's chart."""
    with loaded.lock:
        found = O.model_lookup(loaded).get(tensor)
        if found is None:
            raise NotFound(f"no parameter or buffer named {tensor!r}", tensor=tensor)
        first, t = found
        fresh: list[H.Histogram] = []

        def full() -> H.TensorStats:
            fresh.append(H.tensor_histogram(tensor, t, bins))
            return fresh[0].stats

        # A live model's entries are reused only while this tensor's values are unchanged.
        digest = content_stamp([t]) if loaded.watch is not None else None
        stamp = (lambda: digest) if digest is not None else None
        # Statistics (quantiles above all) do not depend on the bins: a new bin count only re-bins.
        stats = loaded.memo(VALUES + "stats:" + first, full, stamp)
        # The last answer per tensor is kept too: the page's first chart is often the prewarmed one.
        last: dict[str, Any] = loaded.memo(VALUES + "last:" + first, dict, stamp)
        if last.get("key") != (tensor, bins):
            h = fresh[0] if fresh else H.tensor_histogram(tensor, t, bins, stats=stats)
            last.update(key=(tensor, bins), body=h.to_dict())
        body: dict[str, Any] = last["body"]
        return body


def weights_overview(
    loaded: LoadedModel,
    start: int = 0,
    stop: int | None = None,
    max_points: int = O.DEFAULT_POINTS,
    max_labels: int = O.DEFAULT_LABELS,
) -> dict[str, Any]:
    """Per-bucket statistics along the depth of the network (the overview chart)."""
    with loaded.lock:
        data = O.overview(O.model_table(loaded), start, stop, max_points, max_labels)
    data["model"] = loaded.id
    data["modified"] = loaded.modified
    return data


def no_values_reason(loaded: LoadedModel) -> str | None:
    """Why no tensor of this model can be drawn (meta device, lazy modules), or None."""
    with loaded.lock:
        tensors = list({id(t): t for _, t in O.model_lookup(loaded).values()}.values())
    if any(H.has_values(t) and not t.is_complex() for t in tensors):
        return None
    if not tensors:
        return "empty"
    return "meta" if any(t.is_meta for t in tensors) else "lazy"


# Above this many elements the statistics are left to the first visit (seconds of work, under the lock).
PREWARM_MAX_ELEMENTS = 1 << 30


def prewarm_weights(models: list[LoadedModel]) -> None:
    """Statistics of every tensor, and the histogram the Weights page opens on (a thread at startup)."""
    for loaded in models:
        with loaded.lock:
            distinct = {id(t): t for _, t in O.model_lookup(loaded).values()}.values()
            if loaded.meta or sum(t.numel() for t in distinct if H.has_values(t)) > PREWARM_MAX_ELEMENTS:
                continue
            name = O.default_tensor(O.model_table(loaded))
            if name is not None:
                tensor_histogram(loaded, name, H.DEFAULT_BINS)


@router.get("/api/models/{model_id}/histogram", tags=["weights"])
def get_histogram(loaded: ModelDep, tensor: TensorQuery, bins: BinsQuery = H.DEFAULT_BINS) -> dict[str, Any]:
    """Histogram (server-side binning; exact when ``sampled`` is false) and statistics of one tensor."""
    return tensor_histogram(loaded, tensor, bins)


@router.get("/api/models/{model_id}/overview", tags=["weights"])
def get_overview(
    loaded: ModelDep,
    start: Annotated[int, Query(ge=0, description="first tensor (depth order)")] = 0,
    stop: Annotated[int | None, Query(ge=0, description="end of the range (exclusive); omit for all")] = None,
    max_points: Annotated[int, Query(ge=1, le=O.MAX_POINTS, description="at most this many buckets")] = O.DEFAULT_POINTS,
    max_labels: Annotated[int, Query(ge=1, le=O.MAX_LABELS, description="at most this many axis labels")] = O.DEFAULT_LABELS,
) -> dict[str, Any]:
    """mean / std / min / max / |x| / zeros of parameters and buffers along the depth of the network, in buckets."""
    return weights_overview(loaded, start, stop, max_points, max_labels)


@router.get("/api/models/{model_id}/tensors", tags=["weights"])
def get_tensors(
    loaded: ModelDep,
    q: Annotated[str, Query(max_length=200, description="words that the name, an alias or the module class contain")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = O.SEARCH_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Search the model's tensors (the Weights page's picker), in depth order."""
    with loaded.lock:
        return O.search(O.model_table(loaded), q, limit, offset)


@router.get("/models/{model_id}/weights", response_class=HTMLResponse, include_in_schema=False)
def weights_page(
    request: Request,
    loaded: ModelDep,
    tensor: Annotated[str | None, Query(max_length=1000)] = None,
    bins: BinsQuery = H.DEFAULT_BINS,
    log: bool = False,
) -> HTMLResponse:
    if tensor is not None:
        with loaded.lock:
            if tensor not in O.model_lookup(loaded):
                raise NotFound(f"no parameter or buffer named {tensor!r}", tensor=tensor)
    return render(
        request,
        "weights.html",
        model=loaded,
        selected=tensor,
        bins=bins,
        log=log,
        max_bins=H.MAX_BINS,
        no_values=no_values_reason(loaded),
    )
