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
from starlette.responses import Response
from starlette.types import Scope

from torchscope import STATIC_DIR, __version__
from torchscope.inspect.models import load_models
from torchscope.inspect.registry import LoadedModel, ModelRegistry
from torchscope.inspect.schedules import warm_up as schedules_warm_up
from torchscope.settings import Settings
from torchscope.web.compression import CompressedStatic, install_compression
from torchscope.web.deps import make_templates
from torchscope.web.errors import install_error_handlers
from torchscope.web.routers import ROUTERS
from torchscope.web.routers.forward import prewarm_forward
from torchscope.web.routers.graph import prewarm_graph
from torchscope.web.routers.models import prewarm_structure
from torchscope.web.routers.weights import prewarm_weights
from torchscope.web.schemas import install_openapi
from torchscope.web.security import SecurityMiddleware, config_from_settings

log = logging.getLogger("torchscope")

# Vendored under static/vendor/ (Apache-2.0, LICENSE beside it), from the swagger-ui-dist package.
SWAGGER_UI_VERSION = "5.35.0"
# plotly.js's official cartesian bundle (bar, scatter, heatmap...: every trace these pages draw),
# vendored from the npm package plotly.js-cartesian-dist-min: 1.5 MB instead of 4.8 MB, and it
# parses in well under half the time (benchmarks/pages.py). The same version as the full bundle
# of the installed plotly package (tests/unit/test_vendor.py checks it).
PLOTLY_CARTESIAN = "vendor/plotly.js-cartesian-dist-min-{version}/plotly-cartesian.min.js"


DOCS_BACK_LINK = (
    b'<body><nav id="back" style="font: 14px system-ui, sans-serif; padding: 8px 20px; background: #111827">'
    b'<a href="/" style="color: #fff; text-decoration: none">&larr; torchscope dashboard</a></nav>'
)


class ImmutableStatic(CompressedStatic):
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


def prewarm(models: list[LoadedModel]) -> None:
    prewarm_structure(models)
    prewarm_forward(models)  # big models only: their forward on fake tensors takes seconds (issue 10)
    prewarm_weights(models)
    prewarm_graph(models)  # big models only: a capture takes a second or more (issue 11)


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
            app.state.registry = load_models(
                settings.specs, settings.kwargs, meta=settings.meta, inputs=settings.inputs
            )
        # The structure views of a big model take a few hundred ms to compute the first time
        # (then they are memoised): compute them now, so the first page a user opens is fast.
        # Then the Weights page's statistics (the overview, the first histogram's quantiles).
        prewarmer = threading.Thread(
            target=prewarm, args=(list(app.state.registry),), name="torchscope-prewarm", daemon=True
        )
        prewarmer.start()
        # Checkpoints (issue 5): open --checkpoint files into app.state.checkpoints; uploads get a temp dir.
        from torchscope.web.routers.checkpoints import start_checkpoints, stop_checkpoints

        start_checkpoints(app, settings)
        gzip = threading.Thread(target=vendor.precompress, args=(cartesian,), name="torchscope-gzip", daemon=True)
        gzip.start()
        yield
        stop_checkpoints(app)
        # torchscope.show() serves from the user's own process: stopping leaves no thread behind.
        for thread in (warmup, prewarmer, gzip):
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
    cartesian = PLOTLY_CARTESIAN.format(version=version).removeprefix("vendor/")
    full_url = f"/vendor/plotly-{version}/plotly.min.js"
    # Every chart page draws cartesian traces only; the full bundle stays served (same URL as before).
    app.state.plotly_url = f"/static/vendor/{cartesian}" if (STATIC_DIR / "vendor" / cartesian).is_file() else full_url
    # A Jinja global, so that macros imported without context (_partials.plotly_script) see it.
    app.state.templates.env.globals["plotly_url"] = app.state.plotly_url
    app.mount(f"/vendor/plotly-{version}", ImmutableStatic(directory=plotly_js_dir()), name="plotly")
    # Vendored files sit under versioned folders: cached for good, like the plotly mount.
    vendor = ImmutableStatic(directory=STATIC_DIR / "vendor")
    app.mount("/static/vendor", vendor, name="vendor")
    app.mount("/static", CompressedStatic(directory=STATIC_DIR), name="static")
    install_compression(app)
    install_error_handlers(app)

    @app.get("/docs", include_in_schema=False)
    def swagger_docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="torchscope API",
            swagger_js_url=f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters={"validatorUrl": None},
        )
        # A way back: Swagger UI's page has no link to the dashboard.
        body = bytes(page.body).replace(b"<body>", DOCS_BACK_LINK, 1)
        return HTMLResponse(body, status_code=page.status_code)

    for router in ROUTERS:
        app.include_router(router)
    # Issue 9: Host, token, origin and body-budget checks before anything else sees the request;
    # an OpenAPI document that states every error each route can answer with.
    app.add_middleware(SecurityMiddleware, config=config_from_settings(settings))
    install_openapi(app)
    return app
