"""Every router of the app, included in one place (create_app)."""

from __future__ import annotations

from fastapi import APIRouter

from torchscope.web.routers import (
    checkpoints,
    forward,
    graph,
    initlab,
    live,
    models,
    schedules,
    weights,
)

ROUTERS: list[APIRouter] = [
    models.router,
    weights.router,
    initlab.router,
    schedules.router,
    checkpoints.router,
    forward.router,
    graph.router,
    live.router,
]
