"""predict and explain: JSON or multipart in, typed JSON (or the overlay PNG itself) out."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request, Response

from .. import inference
from ..errors import InvalidInput
from ..schemas import (
    ErrorBody,
    ExplainRequest,
    ExplainResponse,
    ExplainSpec,
    PredictRequest,
    PredictResponse,
    PredictSpec,
)
from .bodies import parse
from .deps import ServicesDep, label
from .disconnect import cancel_on_disconnect

router = APIRouter(prefix="/v1/models", tags=["inference"])

ERRORS = {status: {"model": ErrorBody} for status in (404, 413, 415, 422, 503)}


def body_doc(model: type, spec: type) -> dict:
    """Both request encodings in the OpenAPI document (the route reads the body itself)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {
                            "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "spec": {
                                "type": "string",
                                "description": f"JSON object: {spec.__name__} (everything but images)",
                            },
                        },
                    }
                },
            },
        }
    }


@router.post("/{name}/predict", responses=ERRORS, openapi_extra=body_doc(PredictRequest, PredictSpec))
async def predict(name: str, request: Request, services: ServicesDep) -> PredictResponse:
    """Top-k predictions for each image."""
    label(request, model=name, method="")
    images, spec = await parse(request, services.settings, PredictRequest, PredictSpec)
    return await cancel_on_disconnect(request, inference.predict(services, name, images, spec.top_k))


@router.post(
    "/{name}/explain",
    responses={**ERRORS, 200: {"content": {"image/png": {}}}},
    openapi_extra=body_doc(ExplainRequest, ExplainSpec),
)
async def explain(name: str, request: Request, services: ServicesDep) -> ExplainResponse:
    """Predictions plus a saliency map per image; with `Accept: image/png` and one image, the overlay PNG."""
    label(request, model=name, method="")
    images, spec = await parse(request, services.settings, ExplainRequest, ExplainSpec)
    label(
        request,
        model=name,
        method=spec.method if isinstance(spec.method, str) else str(spec.method.get("name")),
    )
    wants_png = "image/png" in request.headers.get("accept", "")
    if wants_png:
        if len(images) != 1:
            raise InvalidInput("Accept: image/png returns one overlay: send exactly one image", "images")
        spec.output.overlay = True
    response = await cancel_on_disconnect(request, inference.explain(services, name, images, spec))
    services_metrics = request.app.state.metrics
    services_metrics.images.labels(name, response.method["name"]).inc(len(response.results))
    if wants_png:
        return Response(base64.b64decode(response.results[0].overlay_png), media_type="image/png")
    return response
