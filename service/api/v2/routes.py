"""The Open Inference Protocol v2 (KServe, Triton) beside v1: health, metadata, model readiness, inference."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from ... import __version__
from ...core import deadlines
from ...errors import NotFound
from ..common import self_contained
from ..deps import ServicesDep, label
from ..disconnect import cancel_on_disconnect
from . import signature, wire
from .errors import INFER_RESPONSES, RESPONSES, V2Route, error
from .infer import run
from .parse import parse
from .schemas import (
    ErrorV2,
    InferenceRequest,
    InferenceResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)

EXTENSIONS = ["binary_tensor_data", "saliency"]
NOT_READY: dict[int | str, dict[str, Any]] = {503: {"model": ErrorV2, "description": "Not ready, and why."}}

# The probes stay open, as v1's /healthz and /readyz; every other v2 route needs a key when keys are set.
health_router = APIRouter(prefix="/v2", tags=["v2"], route_class=V2Route)
router = APIRouter(prefix="/v2", tags=["v2"], route_class=V2Route, responses={401: RESPONSES[401]})


@health_router.get("/health/live")
def live() -> Live:
    """200 while the process serves."""
    return Live(live=True)


@health_router.get("/health/ready", responses=NOT_READY, response_model=Ready)
def ready(request: Request, services: ServicesDep) -> Response:
    """200 when every preload model is loaded and the server is not draining (as /readyz); else 503."""
    failing = services.pool.failures()
    if request.app.state.draining:
        return error(503, "draining")
    if failing:
        return error(503, "not ready: " + "; ".join(f"{name}: {reason}" for name, reason in failing.items()))
    return JSONResponse({"ready": True})


@router.get("")
def server_metadata() -> ServerMetadata:
    """The server's name, version and protocol extensions."""
    return ServerMetadata(name="saliency-service", version=__version__, extensions=EXTENSIONS)


@router.get("/models/{name}", responses=RESPONSES)
def model_metadata(name: str, services: ServicesDep) -> ModelMetadata:
    """The model's inputs (send one of them) and outputs; `saliency` and `scores` come with `explain`."""
    return signature.metadata(services.pool.spec(name))


@router.get("/models/{name}/ready", responses={**RESPONSES, **NOT_READY}, response_model=ModelReady)
def model_ready(name: str, request: Request, services: ServicesDep) -> Response:
    """200 when the model can serve now: loaded, or loaded on its first request; 503 if failed or loading."""
    spec = services.pool.spec(name)
    failing = services.pool.failures()
    state, reason = services.pool.state(name)
    if request.app.state.draining:
        return error(503, "draining")
    if state == "failed" or name in failing:
        return error(503, f"model {name!r} is not ready: {reason or failing[name]}")
    return JSONResponse({"name": spec.name, "ready": True})


@router.post(
    "/models/{name}/infer",
    responses={
        **INFER_RESPONSES,
        200: {
            "model": InferenceResponse,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "JSON; with binary outputs, the JSON object (Inference-Header-Content-Length bytes) and "
            "then the outputs' bytes.",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": self_contained(InferenceRequest)},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    response_class=Response,
)
async def infer(name: str, request: Request, services: ServicesDep) -> Response:
    """Logits and probabilities (a text's tokens; a causal LM's continuation); with `explain`, saliency too."""
    label(request, model=name, method="")
    spec = services.pool.spec(name)
    settings = services.settings
    body = await wire.read(request, settings)
    header, binary = wire.split(body, request.headers.get(wire.HEADER_LENGTH))
    wire.check_values(header, signature.max_json_values(spec, settings))
    call = parse(header, binary, spec, signature.max_items(spec, settings))
    del body, binary
    method = call.explain.method if call.explain else ""
    label(request, model=name, method=method if isinstance(method, str) else str(method.get("name")))
    seconds = (
        settings.request_timeout_s
        if call.timeout_us is None
        else min(settings.request_timeout_s, call.timeout_us / 1e6)
    )
    work = deadlines.within(seconds, run(services, name, call), services.runner.metrics, name)
    return wire.respond(*await cancel_on_disconnect(request, work))


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
def not_found(rest: str, request: Request) -> Response:
    """Any other /v2 path or method, answered in the v2 error shape (registered last)."""
    path = f"/v2/{rest}"
    allowed = sorted(
        method
        for route in (*health_router.routes, *router.routes)
        if isinstance(route, APIRoute) and route.path_regex.fullmatch(path) and route.name != "not_found"
        for method in route.methods or ()
    )
    if allowed:
        return error(
            405, f"{request.method} is not allowed on {path}: use {', '.join(allowed)}", {"Allow": ", ".join(allowed)}
        )
    hint = "; models have no versions here: leave /versions/... out" if "/versions/" in path else ""
    raise NotFound(f"no v2 endpoint {request.method} {path}{hint}")
