"""The dataflow graph (issue 11): one module call's graph as JSON, search, and the Graph page."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from torchscope.inspect.errors import InspectError, InvalidRequest
from torchscope.inspect.graph.capture import CaptureMode
from torchscope.inspect.graph.parts import MAX_NODES
from torchscope.inspect.graph.service import model_capture, model_graph, model_search
from torchscope.inspect.registry import LoadedModel
from torchscope.inspect.structure import is_uninitialized
from torchscope.web.deps import ModelDep, render
from torchscope.web.routers.forward import PREWARM_MIN_PARAMS  # the same models: big ones

router = APIRouter()

# Vendored under static/vendor/ (EPL-2.0, LICENSE.md beside it): the npm package's elk-api.js and
# elk-worker.min.js, so the layout runs in a Web Worker and the page never freezes.
ELKJS_VERSION = "0.12.1"
MAX_INPUTS_QUERY = 8192  # characters of the inputs JSON in a query string

PathQuery = Annotated[
    str, Query(max_length=1000, description="module path as in named_modules(); '' for the model itself")
]
CallQuery = Annotated[int, Query(ge=0, le=1_000_000, description="which call of a module called more than once")]
ParamsQuery = Annotated[bool, Query(description="draw parameters and buffers as nodes")]
CaptureQuery = Annotated[
    CaptureMode, Query(description="auto: torch.export, else forward hooks; or force one of them")
]
PartQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^\d{1,9}-\d{1,9}$",
        description="lo-hi: nodes lo..hi (exclusive) of a view too wide to draw at once, as its "
        f"'part' boxes give them (views of more than {MAX_NODES} nodes are cut into parts)",
    ),
]
InputsQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_INPUTS_QUERY,
        description='example inputs as JSON, like the forward pass takes them: {"args": [{"shape": [1, 16], "dtype": "int64"}]}',
    ),
]


# The capture of a big model takes a second or more (GPT-2 small on meta, 1,024 tokens: ~1 s;
# GPT-2-XL: ~4 s): done at startup, after the forward pass's, so the Graph page opens at once.
# Its cost follows the modules and ops, not the parameters: past this many modules it is left to
# the first visit (which says it is capturing, and for how long so far).
PREWARM_MAX_MODULES = 5_000


def prewarm_graph(models: list[LoadedModel]) -> None:
    """Memoise the served inputs' capture of every big model (runs in the startup thread)."""
    for loaded in models:
        with loaded.lock:
            params = sum(p.numel() for p in loaded.module.parameters() if not is_uninitialized(p))
            modules = sum(1 for _ in loaded.module.modules())
        if params < PREWARM_MIN_PARAMS or modules > PREWARM_MAX_MODULES:
            continue
        with contextlib.suppress(InspectError):  # no inputs, or a failing capture: memoised as such
            model_capture(loaded)


def parse_inputs_query(text: str | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"inputs: not valid JSON ({exc})", field="inputs") from None


@router.get("/api/models/{model_id}/graph", tags=["graph"])
def get_graph(
    loaded: ModelDep,
    path: PathQuery = "",
    call: CallQuery = 0,
    params: ParamsQuery = False,
    capture: CaptureQuery = CaptureMode.auto,
    inputs: InputsQuery = None,
    part: PartQuery = None,
) -> dict[str, Any]:
    """The graph inside module ``path`` (its child modules as boxes, its own ops, its inputs and outputs).

    Captured on fake tensors with torch.export (else forward hooks; ``capture`` says which and
    ``reason`` why), memoised per structure version and inputs. Unknown paths are a 404; a
    model without example inputs is a 409 with the reason. A view too wide to draw comes cut
    into parts (nodes with ``part``); ``part=lo-hi`` answers one of them.
    """
    span = None
    if part is not None:
        lo, hi = (int(x) for x in part.split("-"))
        span = (lo, hi)
    return model_graph(
        loaded, path, call, params=params, mode=capture, given=parse_inputs_query(inputs), part=span
    )


@router.get("/api/models/{model_id}/graph/search", tags=["graph"])
def search_graph(
    loaded: ModelDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="part of a module path or class, or an op name")],
    capture: CaptureQuery = CaptureMode.auto,
    inputs: InputsQuery = None,
) -> dict[str, Any]:
    """Modules and ops whose name contains ``q``, each with the module calls to expand to see it."""
    return model_search(loaded, q, mode=capture, given=parse_inputs_query(inputs))


@router.get("/models/{model_id}/graph", response_class=HTMLResponse, include_in_schema=False)
def graph_page(request: Request, loaded: ModelDep) -> HTMLResponse:
    # The page draws from GET /api/models/{id}/graph (the same data function), one module at a
    # time as the user expands: a capture of a large model takes seconds, the shell does not wait.
    return render(request, "graph.html", model=loaded, elk_version=ELKJS_VERSION)
