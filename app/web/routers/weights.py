"""Weights: per-tensor histograms + statistics, the whole-model overview, and the Weights page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from torchscope.inspect import histograms as H
from torchscope.inspect.registry import LoadedModel
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
        t = H.find_tensor(loaded.module, tensor)
        return H.tensor_histogram(tensor, t, bins).to_dict()


def weights_overview(loaded: LoadedModel) -> dict[str, Any]:
    """Per-tensor statistics in depth order: the overview chart and the page's tensor picker."""
    with loaded.lock:
        data = H.model_overview(loaded.module).to_dict()
    data["model"] = loaded.id
    data["modified"] = loaded.modified
    return data


@router.get("/api/models/{model_id}/histogram", tags=["weights"])
def get_histogram(
    loaded: ModelDep, tensor: TensorQuery, bins: BinsQuery = H.DEFAULT_BINS
) -> dict[str, Any]:
    """Histogram (server-side binning; exact when ``sampled`` is false) and statistics of one tensor."""
    return tensor_histogram(loaded, tensor, bins)


@router.get("/api/models/{model_id}/overview", tags=["weights"])
def get_overview(loaded: ModelDep) -> dict[str, Any]:
    """mean / std / min / max / |x| / zeros of every parameter and buffer, along the depth of the network."""
    return weights_overview(loaded)


@router.get("/models/{model_id}/weights", response_class=HTMLResponse, include_in_schema=False)
def weights_page(
    request: Request,
    loaded: ModelDep,
    tensor: Annotated[str | None, Query(max_length=1000)] = None,
    bins: BinsQuery = H.DEFAULT_BINS,
) -> HTMLResponse:
    overview = weights_overview(loaded)
    names = {r["name"] for r in overview["tensors"]} | {
        a for r in overview["tensors"] for a in r["aliases"]
    }
    if tensor is not None and tensor not in names:
        with loaded.lock:
            H.find_tensor(loaded.module, tensor)  # raises the same 404 as the API
    readable = [r for r in overview["tensors"] if r["stats"] is not None]
    selected = tensor if tensor is not None else (readable[0]["name"] if readable else None)
    return render(
        request,
        "weights.html",
        model=loaded,
        overview=overview,
        selected=selected,
        bins=bins,
        max_bins=H.MAX_BINS,
    )
