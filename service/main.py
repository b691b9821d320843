"""create_app(settings): the lifespan builds the services (service.core.services); no import-time state."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from . import __version__
from .api import auth, docs, handlers, health, ui, v2
from .api.observe import RequestObserver, valid_request_id
from .api.v1 import demo, explain, methods, models, sanity
from .core import build_services
from .keys import ApiKeys
from .metrics import Metrics
from .models import ModelPool
from .settings import Settings

log = logging.getLogger("service")


async def retry_failed_loads(pool: ModelPool, every_s: float = 1.0) -> None:
    """Tries failed preload models again as their cool-downs end, so a weights file that appears later is
    served (and readiness turns 200) without a restart; failed lazy models retry on their next request."""
    while True:
        await asyncio.sleep(every_s)
        if pool.failures():
            await asyncio.to_thread(pool.retry_due)


def create_app(settings: Settings | None = None, api_keys: ApiKeys | None = None) -> FastAPI:
    """The app; `api_keys` defaults to those the settings name (a bad keys file raises KeysError here)."""
    settings = settings or Settings()
    api_keys = api_keys if api_keys is not None else ApiKeys.load(settings.api_keys, settings.api_key_hashes)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = build_services(settings, metrics)
        app.state.services = services
        metrics.loaded.set_function(lambda: sum(services.pool.state(n)[0] == "loaded" for n in services.pool.specs))
        await asyncio.to_thread(services.pool.preload)
        retrying = asyncio.create_task(retry_failed_loads(services.pool))
        try:
            yield
        finally:
            retrying.cancel()
            services.close()

    docs_open = settings.docs == "open"
    app = FastAPI(
        title="saliency-service",
        version=__version__,
        lifespan=lifespan,
        description="Predictions with saliency maps (gradient, SmoothGrad, Integrated Gradients, "
        "Grad-CAM, occlusion) for PyTorch vision models.",
        docs_url=None,  # docs.install serves the pages, with assets from the package instead of a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs_open else None,
    )
    app.state.metrics = metrics
    app.state.draining = False
    app.state.api_keys = api_keys
    handlers.install(app)
    keyed = [Depends(auth.require_key)]
    app.include_router(health.router)
    app.include_router(health.metrics_router, dependencies=keyed if settings.metrics_auth else None)
    for router in (models.router, methods.router, explain.router, sanity.router, demo.router):
        app.include_router(router, dependencies=keyed, responses=auth.RESPONSES)
    # Open Inference Protocol v2 beside v1, over the same core: its probes open as v1's, the rest keyed.
    app.include_router(v2.health_router)
    app.include_router(v2.router, dependencies=keyed)
    ui.install(app)
    if settings.docs != "off":
        docs.install(app, keyed=settings.docs == "auth")

    # add_middleware wraps what is there: the first added runs innermost. The request id is outermost, so
    # that every response (a 500 and a CORS refusal too) carries it and every log line of the request has it.
    app.add_middleware(RequestObserver, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["Retry-After", "X-Request-ID", *explain.PNG_HEADERS],
        )
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID", validator=valid_request_id)
    return app
