"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .deps import MetricsDep, ServicesDep

router = APIRouter(tags=["health"])
# Its own router: the app may put /metrics behind the API keys (SALIENCY_METRICS_AUTH), never the probes.
metrics_router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """200 while the process serves."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Draining, or preload models not loaded/failed."}})
def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    """200 when every preload model is loaded; 503 with the failing models and reasons otherwise."""
    failing = services.pool.failures()
    if request.app.state.draining:
        return JSONResponse({"status": "draining", "models": failing}, status_code=503)
    if failing:
        return JSONResponse({"status": "not_ready", "models": failing}, status_code=503)
    return JSONResponse({"status": "ready", "models": {}})


@metrics_router.get("/metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
