"""FastAPI dependencies and the page renderer shared by every router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from torchscope import TEMPLATES_DIR, __version__
from torchscope.inspect import histograms
from torchscope.inspect.registry import LoadedModel, ModelRegistry
from torchscope.settings import Settings
from torchscope.units import human_bytes


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
# Every histogram endpoint (model tensors, init previews, checkpoint tensors) takes the same bins.
BinsQuery = Annotated[
    int, Query(ge=histograms.MIN_BINS, le=histograms.MAX_BINS, description="number of histogram bins")
]
DEFAULT_BINS = histograms.DEFAULT_BINS
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_model(model_id: str, registry: RegistryDep) -> LoadedModel:
    """The served model named by the ``{model_id}`` path parameter; unknown ids are a 404."""
    return registry.get(model_id)


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["version"] = __version__
    templates.env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    templates.env.filters["bytes"] = human_bytes
    return templates


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the shared context (model list for the nav, plotly URL)."""
    templates: Jinja2Templates = request.app.state.templates
    context.setdefault("models", list(request.app.state.registry))
    model = context.get("model")
    if "live" not in context and isinstance(model, LoadedModel):
        context["live"] = {model.id: model.revision}  # what static/js/live.js compares with
    context["plotly_url"] = request.app.state.plotly_url
    return templates.TemplateResponse(request, template, context, status_code=status_code)
