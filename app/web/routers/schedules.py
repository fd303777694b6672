"""LR schedule lab: the scheduler catalogue, previews (with or without a model), exports, pages.

HTTP contract (see issue 4; external checks read it):
POST /api/schedules/preview
  {"optimizer": {"type", "lr", ...}, "groups": [{"lr": ...}, ...], "scheduler": {"type", "args"},
   "epochs": int, "steps_per_epoch": int, "step": "epoch" | "batch"}
  -> {"x": [...], "groups": [{"lr": [...], "momentum": [...] | null, ...}], "warnings": [...], ...}
  One entry per optimizer step (epochs * steps_per_epoch); entry i is what optimizer step i uses.
  Optional: "max_points" (decimate for drawing), "encoding": "b64" (float64 base64 arrays),
  "overlay_batch_mistake", "metrics" / "metric_shape" (ReduceLROnPlateau).
POST /api/models/{id}/schedules/preview: the same, "groups" hold {"name", "match": [...], options}.
POST /api/schedules/resume
  {"state": <scheduler.state_dict() as JSON>, "steps": N, "optimizer": {"param_groups": [...]} (optional),
   "scheduler_type" (when LambdaLR/MultiplicativeLR), "lr_lambda" (their expression)}
  -> {"type", "last_epoch", "x": [last_epoch, ...], "groups": [{"lr", "momentum"}], "warnings", ...}
  (POST /api/checkpoints/{cid}/resume does the same for a state inside an opened checkpoint.)
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from torchscope.inspect import param_groups as pg
from torchscope.inspect import schedules
from torchscope.inspect.checkpoints import CheckpointStore
from torchscope.inspect.errors import InvalidRequest
from torchscope.inspect.registry import LoadedModel
from torchscope.inspect.schedules.export import csv_chunks
from torchscope.web.deps import ModelDep, render
from torchscope.web.routers.checkpoints import StoreDep
from torchscope.web.schemas import GroupsJson, PreviewJson, ResumeJson

router = APIRouter(tags=["schedules"])


JsonBody = PreviewJson  # typed for the OpenAPI document; the domain parser stays the validator (issue 9)

# What the page starts with when it has nothing else (also the snippet/CSV examples in the docs).
DEFAULT_REQUEST: dict[str, Any] = {
    "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9},
    "groups": [{}],
    "scheduler": {
        "type": "SequentialLR",
        "args": {
            "milestones": [5],
            "schedulers": [
                {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
                {"type": "CosineAnnealingLR", "args": {"T_max": 45}},
            ],
        },
    },
    "epochs": 50,
    "steps_per_epoch": 100,
    "step": "epoch",
}


def _json(data: Any, timing: dict[str, float] | None = None, status: int = 200) -> Response:
    # Our own encoder: FastAPI's jsonable_encoder walks every float of a 100k-step series.
    t = time.perf_counter()
    body = schedules.dumps(data)
    headers = {}
    if timing is not None:
        timing["encode"] = (time.perf_counter() - t) * 1000
        headers["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in timing.items())
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _encoding(body: dict[str, Any]) -> str:
    enc = body.get("encoding", "json")
    if enc not in ("json", "b64"):
        raise InvalidRequest(f'encoding: must be "json" or "b64", got {enc!r}', field="encoding")
    return str(enc)


def preview_data(body: dict[str, Any], loaded: LoadedModel | None = None) -> schedules.Preview:
    """The one data function behind the preview endpoints, the exports and the pages."""
    if loaded is None:
        return schedules.preview(schedules.parse_request(body))
    with loaded.lock:
        return schedules.model_preview(body, loaded.module)


def membership_data(loaded: LoadedModel, groups: Any) -> dict[str, Any]:
    with loaded.lock:
        return pg.resolve(loaded.module, pg.parse_rules(groups)).to_dict()


def _spec_and_membership(body: dict[str, Any], loaded: LoadedModel | None) -> tuple[schedules.PreviewSpec, pg.Membership | None]:
    if loaded is None:
        return schedules.parse_request(body), None
    with loaded.lock:
        m = pg.resolve(loaded.module, pg.parse_rules(body.get("groups", [])))
    spec = schedules.parse_request(
        body, group_names=[g.name for g in m.groups], group_overrides=[g.options for g in m.groups]
    )
    return spec, m


# --------------------------------------------------------------------------- API


@router.get("/api/schedulers")
def get_catalogue() -> dict[str, Any]:
    """Every scheduler of torch.optim.lr_scheduler (arguments from inspect.signature) and the optimizers."""
    return schedules.catalogue()


@router.post("/api/schedules/preview")
def post_preview(body: JsonBody) -> Response:
    """lr (and momentum / betas[0]) per optimizer step and group, equal to stepping torch."""
    enc = _encoding(body)
    t = time.perf_counter()
    result = preview_data(body)
    timing = {"preview": (time.perf_counter() - t) * 1000}
    return _json(result.to_dict("raw" if enc == "json" else enc), timing)


@router.post("/api/models/{model_id}/schedules/preview")
def post_model_preview(loaded: ModelDep, body: JsonBody) -> Response:
    """The preview with param groups chosen by patterns over this model's parameter names or module classes."""
    enc = _encoding(body)
    t = time.perf_counter()
    result = preview_data(body, loaded)
    timing = {"preview": (time.perf_counter() - t) * 1000}
    return _json(result.to_dict("raw" if enc == "json" else enc), timing)


@router.post("/api/models/{model_id}/schedules/groups")
def post_groups(loaded: ModelDep, body: GroupsJson) -> dict[str, Any]:
    """Which parameters each group pattern holds (names, counts), double matches and empty groups."""
    return membership_data(loaded, body.get("groups", []))


@router.post("/api/schedules/resume")
def post_resume(body: ResumeJson) -> Response:
    """A saved scheduler state continued for ``steps`` more scheduler.step() calls: real torch objects, stepped."""
    enc = _encoding(body)
    opt = body.get("optimizer")
    groups = opt.get("param_groups") if isinstance(opt, dict) else None
    if opt is not None and not isinstance(groups, list):
        raise InvalidRequest('optimizer: must be {"param_groups": [...]} (optimizer.state_dict()\'s)', field="optimizer")
    stype = body.get("scheduler_type")
    if stype is not None and not isinstance(stype, str):
        raise InvalidRequest("scheduler_type: must be a scheduler name", field="scheduler_type")
    result = schedules.resume(body.get("state"), steps=body.get("steps", 100), scheduler_type=stype,
                              lr_lambda=body.get("lr_lambda"), optimizer_groups=groups)
    return _json(result.to_dict("raw" if enc == "json" else enc))


def _snippet(body: dict[str, Any], loaded: LoadedModel | None) -> Response:
    spec, membership = _spec_and_membership(body, loaded)
    # Build it once so a snippet is only ever exported for something torch accepts.
    schedules.compute_series(spec, min(spec.scheduler_steps, 2))
    code = schedules.snippet(spec, membership)
    if body.get("format") == "py":
        return PlainTextResponse(code, media_type="text/x-python")
    return _json({"code": code})


@router.post("/api/schedules/snippet")
def post_snippet(body: JsonBody) -> Response:
    """Python that builds exactly this optimizer and scheduler, with the training-loop skeleton."""
    return _snippet(body, None)


@router.post("/api/models/{model_id}/schedules/snippet")
def post_model_snippet(loaded: ModelDep, body: JsonBody) -> Response:
    """The snippet with this model's param groups written as the patterns typed in the lab."""
    return _snippet(body, loaded)


def _csv(result: schedules.Preview, name: str) -> Response:
    # Streamed in chunks (from the thread pool): a long schedule is never one big string.
    return StreamingResponse(
        csv_chunks(result),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/api/schedules/csv")
def post_csv(body: JsonBody) -> Response:
    """The curves as CSV: step, epoch, then lr (and momentum) per group."""
    return _csv(preview_data(body), "schedule.csv")


@router.post("/api/models/{model_id}/schedules/csv")
def post_model_csv(loaded: ModelDep, body: JsonBody) -> Response:
    return _csv(preview_data(body, loaded), f"{loaded.id}-schedule.csv")


# --------------------------------------------------------------------------- pages


def _resume_context(store: CheckpointStore, checkpoint: str | None, path: str | None) -> dict[str, Any]:
    """The lab's "resume" picker: every scheduler state in the opened checkpoints, and which to open with."""
    return {"resumables": schedules.resumables(store),
            "resume_from": {"checkpoint": checkpoint, "path": path or ""} if checkpoint else None}


ResumeQuery = Annotated[str | None, Query(max_length=4096, description="resume the scheduler state of this checkpoint")]


@router.get("/schedules", response_class=HTMLResponse, include_in_schema=False)
def schedules_page(request: Request, store: StoreDep, checkpoint: ResumeQuery = None, path: ResumeQuery = None) -> HTMLResponse:
    return render(request, "schedules.html", model=None, catalogue=schedules.catalogue(),
                  initial=DEFAULT_REQUEST, membership=None, resume=_resume_context(store, checkpoint, path))


@router.get("/models/{model_id}/schedules", response_class=HTMLResponse, include_in_schema=False)
def model_schedules_page(request: Request, loaded: ModelDep, store: StoreDep) -> HTMLResponse:
    initial = {**DEFAULT_REQUEST, "groups": _default_rules(loaded)}
    return render(request, "schedules.html", model=loaded, catalogue=schedules.catalogue(),
                  initial=initial, membership=membership_data(loaded, initial["groups"]),
                  resume=_resume_context(store, None, None))


def _default_rules(loaded: LoadedModel) -> list[dict[str, Any]]:
    # A useful start: biases and norm layers without weight decay, the rest at the defaults.
    return [{"name": "no_decay", "match": ["*.bias", "*Norm*"], "weight_decay": 0.0}]
