"""create_app(settings): the lifespan builds the model pool, the registry and the runner; no import-time state."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from . import __version__
from .api import explain, handlers, health, methods, models
from .explainers import default_registry
from .inference import Services
from .metrics import Metrics
from .models import ModelPool, load_config
from .runner import EngineRunner
from .settings import Settings

log = logging.getLogger("service")


def build_services(settings: Settings, metrics: Metrics | None = None) -> Services:
    def on_load(loaded) -> None:
        if metrics is not None:
            metrics.load_seconds.labels(loaded.spec.name).set(loaded.load_seconds)

    pool = ModelPool(
        load_config(settings.config),
        device=settings.device,
        max_loaded=settings.max_loaded_models,
        max_param_bytes=settings.max_param_bytes,
        on_load=on_load,
    )
    return Services(settings=settings, pool=pool, registry=default_registry(), runner=EngineRunner(settings, metrics))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = build_services(settings, metrics)
        app.state.services = services
        metrics.loaded.set_function(lambda: sum(services.pool.state(n)[0] == "loaded" for n in services.pool.specs))
        await asyncio.to_thread(services.pool.preload)
        try:
            yield
        finally:
            services.runner.close()

    app = FastAPI(
        title="saliency-service",
        version=__version__,
        lifespan=lifespan,
        description="Predictions with saliency maps (gradient, SmoothGrad, Integrated Gradients, "
        "Grad-CAM, occlusion) for PyTorch vision models.",
    )
    app.state.metrics = metrics
    app.state.draining = False
    handlers.install(app)
    for router in (health.router, models.router, methods.router, explain.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["Retry-After"],
        )

    @app.middleware("http")
    async def record_metrics(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        if route is None or request.url.path == "/metrics":
            return response
        labels = getattr(request.state, "metric_labels", {})
        services: Services | None = getattr(request.app.state, "services", None)
        # Only configured names become label values: clients must not grow the metrics' cardinality.
        model = labels.get("model", "")
        method = labels.get("method", "")
        if services is not None:
            model = model if model in services.pool.specs else ("" if not model else "unknown")
            method = method if method in services.registry.names() else ("" if not method else "unknown")
        key = (route.path, model, method)
        metrics.requests.labels(*key, str(response.status_code)).inc()
        metrics.latency.labels(*key).observe(time.perf_counter() - started)
        if response.status_code >= 400:
            metrics.errors.labels(*key, getattr(request.state, "error_code", "http_error")).inc()
        return response

    return app
