"""Model versions: what an open page polls to learn that its model changed (static/js/live.js).

A model served from Python (``torchscope.show``) changes when its owner trains or edits it;
any served model changes when a page applies an init plan, resets, or loads a checkpoint.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from torchscope.inspect.registry import LoadedModel
from torchscope.web.deps import ModelDep

router = APIRouter()

# The page polls every POLL_MS, or less often when one check costs more than 1% of that.
POLL_MS = 1000
MAX_POLL_MS = 60_000


class ModelVersion(BaseModel):
    model: str = Field(description="the model's id")
    revision: int = Field(description="changes with every change to the model: structure, flags or values")
    version: int = Field(description="changes with the structure (modules, tensors, shapes, dtypes, flags)")
    live: bool = Field(description="served from Python (torchscope.show): its owner may change it at any time")
    modified: bool = Field(description="changed by this dashboard since served; reset restores it")
    poll_ms: int = Field(description="how often a page should ask again, in milliseconds")


def model_version(loaded: LoadedModel) -> ModelVersion:
    """The one data function behind ``/api/models/{id}/version`` (the model is synced by its lookup)."""
    cost_s = loaded.watch.last_cost_s if loaded.watch is not None else 0.0
    return ModelVersion(
        model=loaded.id,
        revision=loaded.revision,
        version=loaded.version,
        live=loaded.watch is not None,
        modified=loaded.modified,
        poll_ms=min(MAX_POLL_MS, max(POLL_MS, int(cost_s * 100_000))),
    )


@router.get("/api/models/{model_id}/version", tags=["models"])
def get_version(loaded: ModelDep) -> ModelVersion:
    """Revision counters of a model; a page that shows an older ``revision`` is out of date."""
    return model_version(loaded)
