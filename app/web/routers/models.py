"""Served models: summaries, the module tree, parameter/buffer tables, lint; and their pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from torchscope.inspect import lint, structure
from torchscope.inspect.registry import LoadedModel
from torchscope.web.deps import ModelDep, RegistryDep, render

router = APIRouter()

# Trees and tables of big models are plain JSON already: answering with JSONResponse
# skips FastAPI's per-field jsonable_encoder pass (seconds on a 20,000-module tree).


def model_summary(loaded: LoadedModel) -> dict[str, Any]:
    """The one data function behind ``/api/models/{id}`` and the summary cards."""
    with loaded.lock:
        data = dict(
            loaded.memo(
                "summary",
                lambda: structure.summary(loaded.module, model_id=loaded.id, name=loaded.name, walk=_index(loaded).walk),
            )
        )
    data["spec"] = loaded.spec
    data["doc"] = loaded.doc
    data["modified"] = loaded.modified
    return data


def _index(loaded: LoadedModel) -> structure.ModuleIndex:
    """One walk of the module tree per structure version, shared by every view."""
    return loaded.memo("index", lambda: structure.paused_gc(structure.ModuleIndex)(loaded.module))


def _json(loaded: LoadedModel, key: str, compute: Callable[[], Any]) -> Response:
    """A memoised JSON body: big trees and tables are serialised once per structure version."""
    body = loaded.memo("json:" + key, lambda: json.dumps(compute(), separators=(",", ":")).encode())
    return Response(body, media_type="application/json")


def prewarm_structure(models: list[LoadedModel]) -> None:
    """Fill the memoised views every structure page asks for first (runs in a thread at startup)."""
    for loaded in models:
        with loaded.lock:
            model_summary(loaded)
            parameters_json(loaded)
            buffers_json(loaded)


def parameters_json(loaded: LoadedModel) -> Response:
    return _json(loaded, "parameters", lambda: structure.parameters_table(loaded.module, _index(loaded).walk))


def buffers_json(loaded: LoadedModel) -> Response:
    return _json(loaded, "buffers", lambda: structure.buffers_table(loaded.module, _index(loaded).walk))


@router.get("/api/models", tags=["models"])
def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
    """The served models, in the order their SPECs were given."""
    return [
        {"id": m.id, "name": m.name, "class": m.class_name, "spec": m.spec, "meta": m.meta, "doc": m.doc}
        for m in registry
    ]


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
    max_nodes: Annotated[
        int | None, Query(ge=1, description="add whole levels only while the answer stays within this many nodes")
    ] = None,
) -> Response:
    """The module tree nested by named_children(); ``children: null`` means not loaded (lazy)."""
    with loaded.lock:
        if q is not None:
            return JSONResponse(structure.search_tree(loaded.module, q, index=_index(loaded)))
        if not path and depth is None and max_nodes is None:
            return _json(loaded, "tree", lambda: structure.tree(loaded.module, index=_index(loaded)))
        return JSONResponse(structure.tree(loaded.module, path, depth, max_nodes, index=_index(loaded)))


@router.get("/api/models/{model_id}/modules", tags=["models"])
def get_modules(loaded: ModelDep) -> Response:
    """The flat view: every entry of named_modules(), next to children()."""
    with loaded.lock:
        return _json(loaded, "modules", lambda: structure.modules_flat(loaded.module, index=_index(loaded)))


@router.get("/api/models/{model_id}/parameters", tags=["models"])
def get_parameters(loaded: ModelDep) -> Response:
    """One row per name of named_parameters(remove_duplicate=False); tied names list each other."""
    with loaded.lock:
        return parameters_json(loaded)


@router.get("/api/models/{model_id}/buffers", tags=["models"])
def get_buffers(loaded: ModelDep) -> Response:
    """One row per name of named_buffers(remove_duplicate=False), with persistence."""
    with loaded.lock:
        return buffers_json(loaded)


@router.get("/api/models/{model_id}/lint", tags=["models"])
def get_lint(loaded: ModelDep) -> list[dict[str, Any]]:
    """Classic mistakes: plain tensor attributes, modules/Parameters in plain lists or dicts."""
    with loaded.lock:
        return lint.lint(loaded.module)


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index_page(request: Request, registry: RegistryDep) -> HTMLResponse:
    summaries = []
    live = {}  # models served from Python: the page polls them (CLI models change only from a page)
    for m in registry:
        revision = m.sync()
        if m.watch is not None:
            live[m.id] = revision
        s = model_summary(m)
        with m.lock:
            s["lint"] = len(lint.lint(m.module))
        summaries.append(s)
    return render(request, "index.html", summaries=summaries, live=live)


@router.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
def model_page(request: Request, loaded: ModelDep) -> HTMLResponse:
    with loaded.lock:
        findings = lint.lint(loaded.module)
    return render(request, "model.html", model=loaded, summary=model_summary(loaded), findings=findings)
