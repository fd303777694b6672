"""Every router of the app, included in one place (create_app)."""

from __future__ import annotations

from fastapi import APIRouter

from app.web.routers import checkpoints, models, schedules

ROUTERS: list[APIRouter] = [
    models.router,
    schedules.router,
    checkpoints.router,
]
