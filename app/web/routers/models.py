"""Served models: summaries, the module tree, parameter/buffer tables, lint; and their pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.inspect import lint, structure
from app.inspect.registry import LoadedModel
from app.web.deps import ModelDep, RegistryDep, render

router = APIRouter()


def model_summary(loaded: LoadedModel) -> dict[str, Any]:
    """The one data function behind ``/api/models/{id}`` and the summary cards."""
    with loaded.lock:
        data = structure.summary(loaded.module, model_id=loaded.id, name=loaded.name)
    data["spec"] = loaded.spec
    data["modified"] = loaded.modified
    return data


@router.get("/api/models", tags=["models"])
def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
    """The served models, in the order their SPECs were given."""
    return [{"id": m.id, "name": m.name, "class": m.class_name, "spec": m.spec, "meta": m.meta} for m in registry]


@router.get("/api/models/{model_id}", tags=["models"])
def get_summary(loaded: ModelDep) -> dict[str, Any]:
    """Totals: modules, parameters (tied weights counted once), buffers, elements per dtype."""
    return model_summary(loaded)


@router.get("/api/models/{model_id}/tree", tags=["models"])
def get_tree(
    loaded: ModelDep,
    path: Annotated[str, Query(description="named_modules() path of the subtree root; '' is the model")] = "",
    depth: Annotated[int | None, Query(ge=0, le=1000, description="levels of children to include; omit for all")] = None,
    q: Annotated[str | None, Query(max_length=200, description="search paths and classes instead")] = None,
) -> dict[str, Any]:
    """The module tree nested by named_children(); ``children: null`` means not loaded (lazy)."""
    with loaded.lock:
        if q is not None:
            return structure.search_tree(loaded.module, q)
        return structure.tree(loaded.module, path, depth)


@router.get("/api/models/{model_id}/modules", tags=["models"])
def get_modules(loaded: ModelDep) -> dict[str, Any]:
    """The flat view: every entry of named_modules(), next to children()."""
    with loaded.lock:
        return structure.modules_flat(loaded.module)


@router.get("/api/models/{model_id}/parameters", tags=["models"])
def get_parameters(loaded: ModelDep) -> list[dict[str, Any]]:
    """One row per name of named_parameters(remove_duplicate=False); tied names list each other."""
    with loaded.lock:
        return structure.parameters_table(loaded.module)


@router.get("/api/models/{model_id}/buffers", tags=["models"])
def get_buffers(loaded: ModelDep) -> list[dict[str, Any]]:
    """One row per name of named_buffers(remove_duplicate=False), with persistence."""
    with loaded.lock:
        return structure.buffers_table(loaded.module)


@router.get("/api/models/{model_id}/lint", tags=["models"])
def get_lint(loaded: ModelDep) -> list[dict[str, Any]]:
    """Classic mistakes: plain tensor attributes, modules/Parameters in plain lists or dicts."""
    with loaded.lock:
        return lint.lint(loaded.module)


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index_page(request: Request, registry: RegistryDep) -> HTMLResponse:
    summaries = [model_summary(m) for m in registry]
    return render(request, "index.html", summaries=summaries)


@router.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
def model_page(request: Request, loaded: ModelDep) -> HTMLResponse:
    with loaded.lock:
        findings = lint.lint(loaded.module)
    return render(request, "model.html", model=loaded, summary=model_summary(loaded), findings=findings)
