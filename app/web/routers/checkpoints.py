"""Checkpoints: list, open (upload or --data-dir), inspect, histogram, compare with / load into a model, diff.

HTTP contract (JSON, errors are ``{"detail": ...}`` with a 4xx status):
- ``GET  /api/checkpoints``                       the opened checkpoints (a list)
- ``GET  /api/checkpoints/overview``              opened checkpoints, startup failures, data-dir files
- ``POST /api/checkpoints/upload?filename=``      the file as the body (or multipart ``file``); over ``max_upload_mb`` is a 413
- ``POST /api/checkpoints/open``                  ``{"path": "rel/to/data_dir.pth"}``; nothing outside --data-dir
- ``GET  /api/checkpoints/{cid}``                 ``{"id", "name", "format", "tensors": [{"key", "shape", "dtype", "bytes"}], "other", "optimizer"}``
- ``GET  /api/checkpoints/{cid}/histogram?key=``  one tensor's histogram (the weights page's histogram machinery)
- ``GET  /api/checkpoints/{cid}/compare?model=``  what ``load_state_dict(strict=True)`` would say, plus hints
- ``GET  /api/checkpoints/{cid}/matches``         served models ranked by how many weights fit (best first)
- ``POST /api/checkpoints/{cid}/load``            ``{"model", "strict", "strip_prefix", "add_prefix"}``
- ``GET  /api/checkpoints/{cid}/diff?other=`` or ``?model=``  added/removed/reshaped/retyped, change per tensor
- ``POST /api/checkpoints/{cid}/resume``          ``{"path", "steps"}``: the saved LR scheduler continued (see schedules)
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from torchscope.inspect import compare, diff, optimizer_names, schedules
from torchscope.inspect.checkpoints import (
    Checkpoint,
    CheckpointStore,
    Isolation,
    list_data_dir,
    resolve_in_data_dir,
    tensor_values,
)
from torchscope.inspect.errors import InvalidRequest, TooLarge
from torchscope.inspect.histograms import tensor_histogram
from torchscope.settings import Settings
from torchscope.web.deps import DEFAULT_BINS, BinsQuery, RegistryDep, SettingsDep, render

router = APIRouter(tags=["checkpoints"])
log = logging.getLogger("torchscope")

_CHUNK = 1 << 20


# --------------------------------------------------------------------------- lifecycle (called from main.py's lifespan)


def start_checkpoints(app: Any, settings: Settings) -> None:
    """Open the --checkpoint files (untrusted ones in worker processes) and make a private directory for uploads."""
    isolation = Isolation(memory_mb=settings.open_memory_mb, timeout_s=settings.open_timeout_s)
    store = CheckpointStore(trusted_paths=settings.trust_pickle, isolation=isolation)
    store.open_startup(settings.checkpoints)
    for failure in store.failures:
        log.warning("--checkpoint %s: %s", failure.path, failure.message)
    app.state.checkpoints = store
    app.state.upload_dir = Path(tempfile.mkdtemp(prefix="torchscope-uploads-"))


def stop_checkpoints(app: Any) -> None:
    store: CheckpointStore | None = getattr(app.state, "checkpoints", None)
    if store is not None:
        store.close()
    upload_dir: Path | None = getattr(app.state, "upload_dir", None)
    if upload_dir is not None:
        shutil.rmtree(upload_dir, ignore_errors=True)


def get_store(request: Request) -> CheckpointStore:
    store: CheckpointStore | None = getattr(request.app.state, "checkpoints", None)
    if store is None:  # an app whose lifespan did not run (never the case under uvicorn/TestClient `with`)
        start_checkpoints(request.app, request.app.state.settings)
        store = request.app.state.checkpoints
    return store


StoreDep = Annotated[CheckpointStore, Depends(get_store)]


def get_checkpoint(cid: str, store: StoreDep) -> Checkpoint:
    return store.get(cid)


CheckpointDep = Annotated[Checkpoint, Depends(get_checkpoint)]


# --------------------------------------------------------------------------- data functions (pages and JSON share them)


def checkpoints_index(store: CheckpointStore, settings: Settings) -> dict[str, Any]:
    return {
        "checkpoints": [c.summary() for c in store],
        "failures": [f.to_dict() for f in store.failures],
        # the folder's name, not its server path (issue 9: responses carry no server paths)
        "data_dir": (settings.data_dir.name or "/") if settings.data_dir else None,
        "files": list_data_dir(settings.data_dir),
        "max_upload_mb": settings.max_upload_mb,
    }


# --------------------------------------------------------------------------- API


@router.get("/api/checkpoints")
def list_checkpoints(store: StoreDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """The opened checkpoints, in the order they were opened (like ``/api/models``)."""
    checkpoints: list[dict[str, Any]] = checkpoints_index(store, settings)["checkpoints"]
    return checkpoints


@router.get("/api/checkpoints/overview")
def checkpoints_overview(store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """What the /checkpoints page shows: opened checkpoints, startup refusals, files under --data-dir."""
    return checkpoints_index(store, settings)


def _copy_limited(src: BinaryIO, target: Path, limit: int, too_large: TooLarge) -> None:
    written = 0
    with target.open("wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise too_large
            out.write(chunk)


@router.post(
    "/api/checkpoints/upload",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "description": "the file itself as the body (streamed, with ?filename=), or multipart/form-data with a `file` field",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
                },
            },
        }
    },
)
async def upload_checkpoint(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    filename: Annotated[str | None, Query(max_length=255, description="the file's name, for a raw-body upload")] = None,
) -> dict[str, Any]:
    """Open an uploaded file (never trusted with --trust-pickle, whatever its name).

    The raw body is streamed to disk and cut off at ``max_upload_mb`` (413) without
    being buffered; a multipart upload must declare its Content-Length, which is
    checked before anything is read. Async only for the streaming; the torch work
    runs in the thread pool.
    """
    limit = settings.max_upload_mb * 1024 * 1024
    too_large = TooLarge(
        f"upload is larger than the {settings.max_upload_mb} MB limit (start torchscope with --max-upload-mb to raise it)",
        limit_mb=settings.max_upload_mb,
    )
    # Kept uploads share one disk quota: an upload may use what the others leave (issue 9).
    room = settings.upload_quota_mb * 1024 * 1024 - store.uploaded_bytes()
    over_quota = TooLarge(
        f"kept uploads would use more than the {settings.upload_quota_mb} MB upload quota: close uploaded "
        "checkpoints to free space (or start torchscope with --upload-quota-mb)",
        quota_mb=settings.upload_quota_mb,
        rule="upload_quota",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:  # multipart framing is small
        raise too_large
    if declared and declared.isdigit() and int(declared) > room + 64 * 1024:
        raise over_quota
    if room < limit:
        limit, too_large = max(room, 0), over_quota
    target = request.app.state.upload_dir / uuid.uuid4().hex
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            if not declared:
                raise InvalidRequest("a multipart upload needs a Content-Length header (or send the file as the raw body)")
            form = await request.form()
            file = form.get("file")
            if not isinstance(file, StarletteUploadFile):
                raise InvalidRequest("the multipart upload has no `file` field", field="file")
            name = Path(file.filename or "upload").name or "upload"
            await run_in_threadpool(_copy_limited, file.file, target, limit, too_large)
        else:
            name = Path(filename or "upload").name or "upload"
            written = 0
            with target.open("wb") as out:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > limit:
                        raise too_large  # stop reading: the rest of the body is never stored
                    out.write(chunk)
        ckpt = await run_in_threadpool(store.open, target, name=name, uploaded=True)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return ckpt.to_dict()


class OpenRequest(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="a path relative to --data-dir")


@router.post("/api/checkpoints/open", status_code=201)
def open_from_data_dir(body: OpenRequest, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Open a file from under --data-dir; paths that escape it (``..``, symlinks, absolute) are refused."""
    path = resolve_in_data_dir(settings.data_dir, body.path)
    return store.open(path, name=body.path).to_dict()


@router.get("/api/checkpoints/{cid}")
def get_checkpoint_detail(ckpt: CheckpointDep) -> dict[str, Any]:
    """Keys, shapes, dtypes, sizes; non-tensor entries; optimizer state (read from metadata only)."""
    return ckpt.to_dict()


@router.delete("/api/checkpoints/{cid}", status_code=204)
def close_checkpoint(ckpt: CheckpointDep, store: StoreDep) -> None:
    store.remove(ckpt.id)
    if ckpt.uploaded:
        ckpt.path.unlink(missing_ok=True)


@router.get("/api/checkpoints/{cid}/histogram")
def checkpoint_histogram(
    ckpt: CheckpointDep,
    key: Annotated[str, Query(min_length=1, max_length=4096, description="the tensor's key path")],
    bins: BinsQuery = DEFAULT_BINS,
) -> dict[str, Any]:
    """Histogram and stats of one checkpoint tensor (read alone, memory-mapped)."""
    # issue 3's machinery, the same as the weights page's
    result: dict[str, Any] = tensor_histogram(key, tensor_values(ckpt, key), bins=bins).to_dict()
    return result


def _compare_data(ckpt: Checkpoint, registry: Any, model: str, strip_prefix: str, add_prefix: str) -> dict[str, Any]:
    loaded = registry.get(model)
    report = compare.checkpoint_report(ckpt, loaded, strip_prefix=strip_prefix, add_prefix=add_prefix)
    data = compare.compare_to_dict(ckpt, loaded, report, strip_prefix=strip_prefix, add_prefix=add_prefix)
    if ckpt.optimizer is not None:
        with loaded.lock:
            data["optimizer_names"] = optimizer_names.jsonable(optimizer_names.optimizer_names(ckpt.optimizer, ckpt, loaded.module))
    return data


Prefix = Annotated[str, Query(max_length=200, description="a key prefix such as 'module.'")]


@router.get("/api/checkpoints/{cid}/matches")
def model_matches(ckpt: CheckpointDep, registry: RegistryDep) -> list[dict[str, Any]]:
    """Served models ranked by how many of their weights this checkpoint's state_dict fits (num_batches_tracked
    counters, which fit anything, not counted); the page's compare panel opens on the first."""
    return compare.rank_models(ckpt, registry)


@router.get("/api/checkpoints/{cid}/compare")
def compare_with_model(
    ckpt: CheckpointDep, registry: RegistryDep, model: Annotated[str, Query(min_length=1)], strip_prefix: Prefix = "", add_prefix: Prefix = ""
) -> dict[str, Any]:
    """Exactly the keys ``model.load_state_dict(sd, strict=True)`` would complain about, plus hints. No tensor is read."""
    return _compare_data(ckpt, registry, model, strip_prefix, add_prefix)


class ResumeRequest(BaseModel):
    path: str = Field(default="", max_length=4096, description="key path of the scheduler state in the checkpoint")
    steps: int = Field(default=100, ge=1, le=schedules.MAX_TORCH_STEPS, description="more scheduler.step() calls")
    scheduler_type: str | None = Field(default=None, max_length=64, description="LambdaLR or MultiplicativeLR, when ambiguous")
    lr_lambda: str | list[str] | None = Field(default=None, description="the lambda's expression (not saved by torch)")
    encoding: Literal["json", "b64"] = "json"


@router.post("/api/checkpoints/{cid}/resume")
def resume_scheduler(ckpt: CheckpointDep, body: ResumeRequest) -> Response:
    """What the LR will be when this run resumes: the saved scheduler (and optimizer) state, stepped by torch."""
    data = schedules.resume_checkpoint(ckpt, body.path, steps=body.steps, scheduler_type=body.scheduler_type,
                                       lr_lambda=body.lr_lambda, encoding="raw" if body.encoding == "json" else body.encoding)
    return Response(schedules.dumps(data), media_type="application/json")


class LoadRequest(BaseModel):
    model: str = Field(min_length=1)
    strict: bool = True
    strip_prefix: str = Field(default="", max_length=200)
    add_prefix: str = Field(default="", max_length=200)


@router.post("/api/checkpoints/{cid}/load")
def load_checkpoint(ckpt: CheckpointDep, registry: RegistryDep, body: LoadRequest) -> dict[str, Any]:
    """Load into a served model (strict refuses with 409 and changes nothing); the init lab's reset restores it."""
    loaded = registry.get(body.model)
    return compare.load_into_model(
        ckpt, loaded, strict=body.strict, strip_prefix=body.strip_prefix, add_prefix=body.add_prefix
    )


@router.get("/api/checkpoints/{cid}/diff")
def diff_checkpoint(
    ckpt: CheckpointDep,
    store: StoreDep,
    registry: RegistryDep,
    other: Annotated[str | None, Query(description="another checkpoint id")] = None,
    model: Annotated[str | None, Query(description="a served model id (its current weights)")] = None,
    strip_prefix: Prefix = "",
    add_prefix: Prefix = "",
) -> dict[str, Any]:
    """This checkpoint (a, keys remapped by the prefixes) against another checkpoint or a model's current weights (b)."""
    if (other is None) == (model is None):
        raise InvalidRequest("give exactly one of ?other=<checkpoint id> or ?model=<model id>", rule="diff")
    fix = {"strip_prefix": strip_prefix, "add_prefix": add_prefix}
    if other is not None:
        return diff.diff_checkpoints(ckpt, store.get(other), **fix)
    return diff.diff_checkpoint_model(ckpt, registry.get(model or ""), **fix)


@router.get("/api/checkpoints/{cid}/diff/histogram")
def diff_histogram(
    ckpt: CheckpointDep,
    store: StoreDep,
    registry: RegistryDep,
    key: Annotated[str, Query(min_length=1, max_length=4096, description="the state_dict key (after the prefix fix)")],
    other: Annotated[str | None, Query(description="another checkpoint id")] = None,
    model: Annotated[str | None, Query(description="a served model id (its current weights)")] = None,
    strip_prefix: Prefix = "",
    add_prefix: Prefix = "",
    bins: BinsQuery = DEFAULT_BINS,
) -> dict[str, Any]:
    """Histograms of one tensor on both sides of a diff, for an overlay: ``{"a": ..., "b": ...}``."""
    if (other is None) == (model is None):
        raise InvalidRequest("give exactly one of ?other=<checkpoint id> or ?model=<model id>", rule="diff")
    loaded = registry.get(model) if model is not None else None
    a, b = diff.pair_source(
        ckpt, store.get(other) if other is not None else None, loaded, strip_prefix=strip_prefix, add_prefix=add_prefix
    )
    if loaded is not None:
        with loaded.lock:
            ta, tb = diff.pair_tensors(a, b, key)
            hb = tensor_histogram(key, tb, bins=bins).to_dict()
    else:
        ta, tb = diff.pair_tensors(a, b, key)
        hb = tensor_histogram(key, tb, bins=bins).to_dict()
    return {"key": key, "a_label": a.label, "b_label": b.label, "a": tensor_histogram(key, ta, bins=bins).to_dict(), "b": hb}


# --------------------------------------------------------------------------- pages


@router.get("/checkpoints", response_class=HTMLResponse, include_in_schema=False)
def checkpoints_page(request: Request, store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    if store.isolation is not None:
        # An upload or open may follow: start a reader process now (its first start imports torch).
        threading.Thread(target=store.isolation.warm_up, name="torchscope-reader-warmup", daemon=True).start()
    return render(request, "checkpoints.html", index=checkpoints_index(store, settings))


@router.get("/checkpoints/{cid}", response_class=HTMLResponse, include_in_schema=False)
def checkpoint_page(request: Request, ckpt: CheckpointDep, store: StoreDep, registry: RegistryDep) -> HTMLResponse:
    others = [c.summary() for c in store if c.id != ckpt.id]
    ranked = compare.rank_models(ckpt, registry)
    return render(request, "checkpoint.html", ckpt=ckpt.to_dict(), others=others,
                  ranked={r["model"]: r for r in ranked}, best_model=ranked[0]["model"] if ranked else None)
