"""Init lab: the nn.init catalogue, plan preview / apply / reset, state_dict download, snippet, page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from torchscope.inspect import export, initlab, materialise
from torchscope.inspect import histograms as H
from torchscope.inspect.errors import NoValues
from torchscope.inspect.registry import LoadedModel
from torchscope.web.deps import BinsQuery, ModelDep, render
from torchscope.web.schemas import PlanJson

router = APIRouter()

PlanBody = PlanJson  # typed for the OpenAPI document; initlab.parse_plan stays the validator (issue 9)


def plan_preview(loaded: LoadedModel, data: dict[str, Any], bins: int) -> dict[str, Any]:
    plan = initlab.parse_plan(data)
    with loaded.lock:
        if not loaded.meta:
            return initlab.preview(loaded.module, plan, bins).to_dict()
        # Meta device: no weights exist. A small model is previewed on a real copy, whose "before"
        # is PyTorch's default initialisation (reset_parameters), said so in "materialised".
        copy = materialise.materialised_copy(loaded.module)
    out = initlab.preview(copy, plan, bins).to_dict()
    out["materialised"] = True
    return out


def refuse_on_meta(loaded: LoadedModel) -> None:
    if loaded.meta:
        raise NoValues(
            "this model is on the meta device: its weights do not exist, so there is nothing to change, "
            "reset or download (previews run on a materialised copy)"
        )


@router.get("/api/init/schemes", tags=["init"])
def get_schemes() -> dict[str, Any]:
    """Every torch.nn.init function with its arguments (read with inspect.signature), ranks, dtypes, gains."""
    return initlab.schemes_payload()


@router.post("/api/models/{model_id}/init/preview", tags=["init"])
def post_preview(
    loaded: ModelDep, plan: PlanBody, bins: BinsQuery = H.DEFAULT_BINS
) -> dict[str, Any]:
    """Before/after histograms and the theoretical distribution per affected tensor; changes nothing."""
    return plan_preview(loaded, plan, bins)


@router.post("/api/models/{model_id}/init/apply", tags=["init"])
def post_apply(loaded: ModelDep, plan: PlanBody) -> dict[str, Any]:
    """Apply the plan to the served model; the original weights are kept for reset."""
    refuse_on_meta(loaded)
    return initlab.apply(loaded, initlab.parse_plan(plan)).to_dict()


@router.post("/api/models/{model_id}/init/reset", tags=["init"])
def post_reset(loaded: ModelDep) -> dict[str, Any]:
    """Restore the weights the model had before its first change, bit for bit."""
    refuse_on_meta(loaded)
    return initlab.reset(loaded)


@router.get("/api/models/{model_id}/init/applied", tags=["init"])
def get_applied(loaded: ModelDep) -> dict[str, Any]:
    """The init plans applied since the original weights, oldest first (empty after a reset)."""
    return initlab.applied(loaded)


@router.post("/api/models/{model_id}/init/snippet", tags=["init"])
def post_snippet(loaded: ModelDep, plan: PlanBody) -> dict[str, Any]:
    """A runnable ``weights_init(model, seed)`` reproducing the plan (validated against this model)."""
    parsed = initlab.parse_plan(plan)
    with loaded.lock:
        initlab.resolve(loaded.module, parsed)
    return {"code": initlab.snippet(parsed), "plan": parsed.to_dict()}


@router.get("/api/models/{model_id}/state_dict", tags=["init"])
def get_state_dict(
    loaded: ModelDep, format: export.ExportFormat = export.ExportFormat.pt
) -> Response:
    """Download the current state_dict; loads with ``load_state_dict(strict=True)``."""
    with loaded.lock:
        out = export.export_state_dict(loaded.module, format, loaded.id)
    return Response(
        content=out.data,
        media_type=out.media_type,
        headers={"Content-Disposition": f'attachment; filename="{out.filename}"'},
    )


@router.get("/models/{model_id}/init", response_class=HTMLResponse, include_in_schema=False)
def init_page(request: Request, loaded: ModelDep) -> HTMLResponse:
    with loaded.lock:
        classes = sorted({type(m).__name__ for _, m in loaded.module.named_modules()})
        numel = materialise.distinct_numel(loaded.module) if loaded.meta else 0
    return render(
        request,
        "init.html",
        model=loaded,
        schemes=initlab.schemes_payload(),
        applied=initlab.applied(loaded),
        classes=classes,
        max_seed=initlab.MAX_SEED,
        meta_numel=numel,
        can_materialise=numel <= materialise.MAX_MATERIALISE,
        max_materialise=materialise.MAX_MATERIALISE,
    )
