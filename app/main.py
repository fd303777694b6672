"""The app factory: ``create_app(settings)``. No module globals; each test builds its own app."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from torchscope import STATIC_DIR, __version__
from torchscope.inspect.models import load_models
from torchscope.inspect.registry import ModelRegistry
from torchscope.inspect.schedules import warm_up as schedules_warm_up
from torchscope.settings import Settings
from torchscope.web.deps import make_templates
from torchscope.web.errors import install_error_handlers
from torchscope.web.routers import ROUTERS
from torchscope.web.routers.models import prewarm_structure

log = logging.getLogger("torchscope")

# Vendored under static/vendor/ (Apache-2.0, LICENSE beside it), from the swagger-ui-dist package.
SWAGGER_UI_VERSION = "5.35.0"


class ImmutableStatic(StaticFiles):
    """Static files under a versioned URL: cache forever, ETag/304 still work."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def plotly_js_dir() -> Path:
    """plotly.js as shipped inside the installed ``plotly`` package: the dashboard never needs a CDN."""
    return Path(plotly.__file__).parent / "package_data"


def plotly_js_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    """Build the FastAPI app; models are loaded in the lifespan unless the CLI already loaded them."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # torch builds its first optimizer slowly (it imports torch._dynamo, ~3 s here): do it in
        # the background at startup, so the first LR-schedule preview a user asks for is not slow.
        warmup = threading.Thread(target=schedules_warm_up, name="torchscope-optim-warmup", daemon=True)
        warmup.start()
        if registry is None:
            app.state.registry = load_models(settings.specs, settings.kwargs, meta=settings.meta)
        # The structure views of a big model take a few hundred ms to compute the first time
        # (then they are memoised): compute them now, so the first page a user opens is fast.
        prewarm = threading.Thread(
            target=prewarm_structure, args=(list(app.state.registry),), name="torchscope-prewarm", daemon=True
        )
        prewarm.start()
        # Checkpoints (issue 5): open --checkpoint files into app.state.checkpoints; uploads get a temp dir.
        from torchscope.web.routers.checkpoints import start_checkpoints, stop_checkpoints

        start_checkpoints(app, settings)
        yield
        stop_checkpoints(app)
        # torchscope.show() serves from the user's own process: stopping leaves no thread behind.
        for thread in (warmup, prewarm):
            thread.join(timeout=10)

    app = FastAPI(
        title="torchscope",
        version=__version__,
        description="Look inside PyTorch networks: structure, weights, init, LR schedules, checkpoints.",
        lifespan=lifespan,
        # FastAPI's default /docs and /redoc pages load their JS from a CDN; /docs is
        # served below from a vendored Swagger UI so it works offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry if registry is not None else ModelRegistry()
    app.state.templates = make_templates()
    version = plotly_js_version()
    app.state.plotly_url = f"/vendor/plotly-{version}/plotly.min.js"
    # A Jinja global, so that macros imported without context (_partials.plotly_script) see it.
    app.state.templates.env.globals["plotly_url"] = app.state.plotly_url
    app.mount(f"/vendor/plotly-{version}", ImmutableStatic(directory=plotly_js_dir()), name="plotly")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_error_handlers(app)

    @app.get("/docs", include_in_schema=False)
    def swagger_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="torchscope API",
            swagger_js_url=f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters={"validatorUrl": None},
        )

    for router in ROUTERS:
        app.include_router(router)
    return app
