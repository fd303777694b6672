"""Request bodies and the error shape, as the OpenAPI document states them (issue 9).

Bodies are typed on the outside (what each field is) and permissive inside where the domain
parser gives the better message (a scheduler's ``args`` depend on its ``type``; optimizer
options on the optimizer): the domain parser stays the validator, the document tells the truth.

Every error is ``{"detail": str, ...}`` (``field``, ``rule``, ``tensor`` and other keys add
precision). :func:`install_openapi` states it for every status each route can answer with:
the security middleware's 400/401/403/413 as well as each route's own 404/409/422.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------- errors


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    detail: str = Field(description="one readable line: what is wrong and, where it helps, what to do")


ERROR_TEXT = {
    400: "the Host header is not this server's name (DNS rebinding), or the body cannot be read",
    401: "this server was started with a token and the request has none (or a wrong one)",
    403: "refused: a request from another site, or a write without a JSON body or the X-Torchscope header",
    404: "no such model, checkpoint or tensor",
    409: "the request conflicts with the model's state (meta tensors have no values; strict load mismatch)",
    413: "the body is over a size limit (API requests, uploads, the upload quota)",
    422: "a value is invalid, or a file cannot be read safely (the reason is in detail)",
    500: "a bug: the answer carries an id to find in the server log",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these statuses, all with the ErrorBody shape."""
    return {code: {"model": ErrorBody, "description": ERROR_TEXT[code]} for code in codes}


# --------------------------------------------------------------------------- request bodies


class SchedulerBody(BaseModel):
    """``{"type": "StepLR", "args": {...}}``; compositions nest schedulers in ``args.schedulers``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a class of torch.optim.lr_scheduler (GET /api/schedulers lists them)")
    args: dict[str, Any] | None = Field(default=None, description="its arguments (validated against its signature)")


class PreviewBody(BaseModel):
    """An LR-schedule preview, snippet or CSV request (see the schedules router's docstring)."""

    model_config = ConfigDict(extra="allow")

    optimizer: dict[str, Any] | None = Field(
        default=None, description='{"type": "SGD", "lr": 0.1, option: value...}; options per GET /api/schedulers'
    )
    groups: list[dict[str, Any]] | None = Field(
        default=None, description="param groups: option overrides ({} = defaults); with a model, {name, match, ...}"
    )
    scheduler: SchedulerBody
    epochs: int = 10
    steps_per_epoch: int = 1
    step: Literal["epoch", "batch"] = "epoch"
    max_points: int | None = Field(default=None, description="decimate the answer to at most this many points")
    encoding: Literal["json", "b64"] = "json"
    overlay_batch_mistake: bool = False
    metrics: list[float] | str | None = Field(default=None, description="ReduceLROnPlateau: one value per scheduler step")
    metric_shape: str | None = Field(default=None, description="ReduceLROnPlateau: a synthetic metric's shape")
    metric_seed: int | None = None
    format: Literal["json", "py"] | None = Field(default=None, description="snippet only: py = the code as text/x-python")


class ResumeBody(BaseModel):
    """A saved scheduler state (``scheduler.state_dict()``) to continue for ``steps`` more steps."""

    model_config = ConfigDict(extra="allow")

    state: dict[str, Any] = Field(description="the scheduler's state_dict, as JSON")
    steps: int = Field(default=100, description="more scheduler.step() calls")
    scheduler_type: str | None = Field(default=None, description="LambdaLR or MultiplicativeLR when the keys are ambiguous")
    lr_lambda: str | list[str] | None = Field(default=None, description="the lambda's expression (torch does not save it)")
    optimizer: dict[str, Any] | None = Field(default=None, description='{"param_groups": [...]}: optimizer.state_dict()\'s')
    encoding: Literal["json", "b64"] = "json"


class GroupsBody(BaseModel):
    """Param-group rules to resolve against a served model."""

    groups: list[dict[str, Any]] | None = Field(
        default=None, description='[{"name", "match": ["fc1.*", "LayerNorm"], option: value...}]'
    )


class InitRule(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown fields are named by the domain parser

    match: str = Field(description="a module class name or a glob on tensor names")
    tensor: Literal["weight", "bias", "all"] = "all"
    fn: str = Field(description="a torch.nn.init function (GET /api/init/schemes)")
    args: dict[str, Any] | None = None


class InitPlan(BaseModel):
    """``{"rules": [{"match", "tensor", "fn", "args"}], "seed": int}``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"rules": [{"match": "Linear", "tensor": "weight", "fn": "kaiming_normal_", "args": {"nonlinearity": "relu"}}], "seed": 0}
            ]
        },
    )

    rules: list[InitRule]
    seed: int = 0


def _as_dict(model: BaseModel) -> dict[str, Any]:
    # Only what the client sent: the domain parsers apply their own defaults and messages.
    data: dict[str, Any] = model.model_dump(exclude_unset=True)
    return data


def preview_body(body: Annotated[PreviewBody, Body()]) -> dict[str, Any]:
    return _as_dict(body)


def resume_body(body: Annotated[ResumeBody, Body()]) -> dict[str, Any]:
    return _as_dict(body)


def groups_body(body: Annotated[GroupsBody, Body()]) -> dict[str, Any]:
    return _as_dict(body)


def plan_body(body: Annotated[InitPlan, Body()]) -> dict[str, Any]:
    return _as_dict(body)


PreviewJson = Annotated[dict[str, Any], Depends(preview_body)]
GroupsJson = Annotated[dict[str, Any], Depends(groups_body)]
ResumeJson = Annotated[dict[str, Any], Depends(resume_body)]
PlanJson = Annotated[dict[str, Any], Depends(plan_body)]

BINARY = {"schema": {"type": "string", "format": "binary"}}

# --------------------------------------------------------------------------- the document


# Query parameters that name something that may not exist (404), and paths that open files.
_LOOKUP_PARAMS = {"tensor", "key", "model", "other"}
_LOOKUP_PATHS = {"/api/checkpoints/open"}
# Paths that read a model's or checkpoint's values (409 on the meta device).
_VALUE_WORDS = ("histogram", "overview", "/init/", "state_dict", "/load", "/diff", "/compare")
# Answers that are not JSON: downloads and text.
_CONTENT: dict[str, dict[str, Any]] = {
    "/state_dict": {"application/octet-stream": BINARY},
    "/csv": {"text/csv": {"schema": {"type": "string"}}},
    "/snippet": {"application/json": {"schema": {"type": "object", "properties": {"code": {"type": "string"}}}},
                 "text/x-python": {"schema": {"type": "string"}}},
}


def _ref(schema_name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema_name}"}


def install_openapi(app: FastAPI) -> None:
    """Generate the document once, then state every error the middleware and routes really answer."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        error = {"application/json": {"schema": _ref("ErrorBody")}}
        for path, ops in doc.get("paths", {}).items():
            for method, op in ops.items():
                queries = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
                codes = {400, 401, 403, 500}  # Host, token, origin (web/security.py); bugs
                if method in ("post", "put", "patch", "delete"):
                    codes |= {413, 422}  # body budget; body values
                if queries:
                    codes.add(422)
                if "{" in path or queries & _LOOKUP_PARAMS or path in _LOOKUP_PATHS:
                    codes.add(404)  # an unknown model, checkpoint, tensor or file
                if any(word in path for word in _VALUE_WORDS):
                    codes.add(409)  # a model on the meta device has no values
                codes |= {int(c) for c in op.get("responses", {}) if str(c).isdigit() and int(c) >= 400}
                for code in sorted(codes):
                    op["responses"][str(code)] = {"description": ERROR_TEXT.get(code, "error"), "content": error}
                for suffix, content in _CONTENT.items():
                    if path.endswith(suffix):
                        ok = next(c for c in op["responses"] if c.startswith("2"))
                        op["responses"][ok]["content"] = content
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
