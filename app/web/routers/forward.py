"""Forward pass: per-call shapes, FLOPs and memory on fake tensors (issue 10); the Forward page.

HTTP contract (``/api/models/{id}/forward``, GET and POST):
``{"inputs": <resolved JSON spec>, "source": "given"|"cli"|"python"|"inferred", "mode": "fake"|"real",
"device", "training", "calls": [{"index", "path", "class", "call", "depth", "parent", "inputs",
"outputs", "flops", "flops_total", "output_bytes", "params"}], "output", "totals": {"flops", "macs",
"param_bytes", "buffer_bytes", "activation_bytes", "output_bytes", "training_bytes": {...}},
"warnings": [...], "aliases", "explain"}``; ``?format=text|markdown`` answers the table as text.
409: no inputs and none can be inferred. 422: unfit inputs (``field``), or a forward that failed
(``path``, ``class``, ``call``, ``module_inputs``, ``error``, and the ``calls`` up to the failure).
"""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from torchscope.inspect import forward as F
from torchscope.inspect.errors import InspectError
from torchscope.inspect.forward import spec as S
from torchscope.inspect.registry import LoadedModel, Slot
from torchscope.inspect.structure import is_uninitialized
from torchscope.web.deps import ModelDep, render

router = APIRouter()


class AnswerFormat(StrEnum):
    json = "json"
    text = "text"
    markdown = "markdown"


class ForwardRequest(BaseModel):
    """``inputs``: the JSON form (or a list of shapes); null = the model's ``--inputs`` or inferred ones."""

    model_config = ConfigDict(extra="forbid")
    inputs: Any = Field(
        default=None,
        description='{"args": [T, ...], "kwargs": {"name": T}}, T = {"shape": [...], "dtype": "float32"}; '
        "or a list of shapes; null for the served inputs",
        examples=[{"args": [{"shape": [1, 3, 224, 224], "dtype": "float32"}]}],
    )


FormatQuery = Annotated[AnswerFormat, Query(description="json (default), or the table as text / markdown")]
DepthQuery = Annotated[int | None, Query(ge=0, le=1000, description="text/markdown: hide calls deeper than this")]
BodyDep = Annotated[ForwardRequest | None, Body()]


def _outcome(loaded: LoadedModel, given: Any) -> tuple[dict[str, Any], bytes] | InspectError:
    """Run once; a failure is an outcome too (memoised like an answer, raised by the caller)."""
    try:
        with loaded.lock:
            resolved = F.model_inputs(loaded, given)
        answer = F.run_forward(loaded.module, resolved, lock=loaded.lock).to_dict()
    except (F.NoInputs, F.ForwardFailed) as exc:
        return exc
    answer["explain"] = F.EXPLAIN
    return answer, json.dumps(answer, separators=(",", ":")).encode()


def forward_answer(loaded: LoadedModel, given: Any = None) -> tuple[dict[str, Any], bytes]:
    """The one data function behind ``/forward`` (both methods), the tree's columns and the page.

    The served inputs' answer is memoised per structure version; given inputs keep one slot
    (the page's last run), so the Forward page and the structure page share it.
    """
    key = ""
    if given is not None:
        S.parse_inputs(given)  # an unfit spec is a 422 before anything runs
        key = json.dumps(given, sort_keys=True)
    slot = loaded.memo("forward:given" if given is not None else "forward", Slot)
    with slot.lock:
        if slot.outcome is None or slot.key != key:
            slot.outcome = _outcome(loaded, given)
            slot.key = key
        outcome: tuple[dict[str, Any], bytes] | InspectError = slot.outcome
    if isinstance(outcome, InspectError):
        raise outcome
    return outcome


# A forward of a small model takes milliseconds; a GPT-2-XL on meta with 1,024 tokens takes
# seconds: those are computed at startup, so the Forward tab and the tree's columns are ready.
PREWARM_MIN_PARAMS = 10_000_000


def prewarm_forward(models: list[LoadedModel]) -> None:
    """Memoise the served inputs' forward of every big model (runs in a thread at startup)."""
    for loaded in models:
        if sum(p.numel() for p in loaded.module.parameters() if not is_uninitialized(p)) < PREWARM_MIN_PARAMS:
            continue
        with contextlib.suppress(InspectError):  # no inputs, or a failing forward: memoised as such
            forward_answer(loaded)


def _respond(loaded: LoadedModel, given: Any, fmt: AnswerFormat, depth: int | None) -> Response:
    answer, body = forward_answer(loaded, given)
    if fmt is AnswerFormat.json:
        return Response(body, media_type="application/json")
    return PlainTextResponse(F.format_table(answer, F.TableFormat(fmt.value), loaded.name, depth))


def _modules(loaded: LoadedModel, given: Any) -> dict[str, Any]:
    """The tree's columns. Never an error status: the structure page asks on every load, and a
    model without inputs (or whose forward fails) is normal there; ``state`` says why not."""
    try:
        answer, _ = forward_answer(loaded, given)
    except InspectError as exc:
        state = "no-inputs" if exc.status == 409 else "failed"
        return {"state": state, "status": exc.status, "detail": exc.message, "flops": 0, "nodes": {}}
    view = F.per_module(answer["calls"], answer["aliases"], answer["totals"]["flops"])
    view.update(
        state="ok", inputs=S.parse_inputs(answer["inputs"]).short(), source=answer["source"], mode=answer["mode"]
    )
    return view


@router.get("/api/models/{model_id}/forward", tags=["forward"])
def get_forward(loaded: ModelDep, format: FormatQuery = AnswerFormat.json, depth: DepthQuery = None) -> Response:
    """One forward on fake tensors with the ``--inputs`` (or inferred) inputs: every module call, FLOPs, memory."""
    return _respond(loaded, None, format, depth)


@router.post("/api/models/{model_id}/forward", tags=["forward"])
def post_forward(
    loaded: ModelDep, body: BodyDep = None, format: FormatQuery = AnswerFormat.json, depth: DepthQuery = None
) -> Response:
    """The same for the given inputs (``{"inputs": null}``: the served ones). The model is never changed."""
    return _respond(loaded, body.inputs if body else None, format, depth)


@router.get("/api/models/{model_id}/forward/modules", tags=["forward"])
def get_forward_modules(loaded: ModelDep) -> dict[str, Any]:
    """Per tree node (``named_modules()`` path): calls, first output, FLOPs own and subtree; for the tree.

    ``state``: ``ok``, ``no-inputs`` (what GET /forward answers with a 409) or ``failed`` (a 422), with ``detail``.
    """
    return _modules(loaded, None)


@router.post("/api/models/{model_id}/forward/modules", tags=["forward"])
def post_forward_modules(loaded: ModelDep, body: BodyDep = None) -> dict[str, Any]:
    """The same for the given inputs."""
    return _modules(loaded, body.inputs if body else None)


@router.get("/models/{model_id}/forward", response_class=HTMLResponse, include_in_schema=False)
def forward_page(request: Request, loaded: ModelDep) -> HTMLResponse:
    return render(
        request,
        "forward.html",
        model=loaded,
        explain=F.EXPLAIN,
        dtypes=list(S.DTYPES),
    )
