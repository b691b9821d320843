"""predict and explain: JSON or multipart in, typed JSON (or the overlay PNG itself) out."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from ... import core
from ...core import deadlines
from ...core.causal import AnswersExplained, Generated
from ...errors import InvalidInput
from ..common import plain, self_contained
from ..deps import ServicesDep, label
from ..disconnect import cancel_on_disconnect
from ..events import Progress, progress_stream, wants_events
from .bodies import parse, raw_image_doc
from .causal_responses import answers_response, generated_response
from .causal_schemas import AnswerExplainResponse, GenerateResponse
from .responses import explain_response, predict_response
from .schemas import (
    DetectExplainResponse,
    DetectPredictResponse,
    ErrorBody,
    ExplainRequest,
    ExplainResponse,
    ExplainSpec,
    MultiExplainResponse,
    PredictRequest,
    PredictResponse,
    PredictSpec,
)

router = APIRouter(prefix="/v1/models", tags=["inference"])

# What an overlay PNG (Accept: image/png) shows; browsers may read them across origins (main.py's CORS).
PNG_HEADERS = {
    "X-Saliency-Target": "The class index explained.",
    "X-Saliency-Label": "Its label, percent-encoded UTF-8 (absent when the model has no labels).",
    "X-Saliency-Probability": "Its probability, as in the JSON body.",
    "X-Saliency-Method": "The method with every parameter and the layer used, as compact ASCII JSON.",
    "X-Saliency-Detections": "Detection models: the boxes drawn (every box over the maximum of their maps).",
}

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (404, 408, 413, 415, 422, 503, 504)
}


def body_doc(model: type[BaseModel], spec: type[BaseModel]) -> dict:
    """The request encodings in the OpenAPI document (the route reads the body itself)."""
    raw_content, query = raw_image_doc(spec)
    return {
        "parameters": query,
        "requestBody": {
            "required": True,
            "description": "JSON; multipart/form-data with `image` file parts; or one image as the whole body, "
            "its spec in the query string (as the form's fields: plain values, `spec` for the JSON spec).",
            "content": {
                "application/json": {"schema": self_contained(model)},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "description": "Other fields, such as top_k=3 or target=1, are read as the JSON values "
                        "they spell; the spec part wins over them.",
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
                **raw_content,
            },
        },
    }


@router.post("/{name}/predict", responses=ERRORS, openapi_extra=body_doc(PredictRequest, PredictSpec))
async def predict(
    name: str, request: Request, services: ServicesDep
) -> PredictResponse | DetectPredictResponse | GenerateResponse:
    """Top-k predictions for each input; a causal language model's continuation of each text."""
    label(request, model=name, method="")
    field, inputs, spec = await parse(request, services.settings, PredictRequest, PredictSpec)
    seconds = deadlines.seconds_for(spec.timeout_ms, services.settings.request_timeout_s)

    async def work() -> PredictResponse | DetectPredictResponse | GenerateResponse:
        result = await core.predict(services, name, field, inputs, spec.top_k, spec.generate)
        return generated_response(result) if isinstance(result, Generated) else predict_response(result)

    return await cancel_on_disconnect(request, deadlines.within(seconds, work(), services.runner.metrics, name))


@router.post(
    "/{name}/explain",
    responses={
        **ERRORS,
        504: {"model": ErrorBody},
        200: {
            "description": "The JSON body; with `Accept: image/png` the overlay; with `Accept: text/event-stream` "
            '`progress` events ({"done", "total"} rows), then one `result` event whose data is the JSON body, '
            "or an `error` event.",
            "content": {"image/png": {}, "text/event-stream": {"schema": {"type": "string"}}},
            "headers": {
                name: {"description": f"With Accept: image/png. {text}", "schema": {"type": "string"}}
                for name, text in PNG_HEADERS.items()
            },
        },
    },
    openapi_extra=body_doc(ExplainRequest, ExplainSpec),
    response_model=ExplainResponse | MultiExplainResponse | DetectExplainResponse | AnswerExplainResponse,
)
async def explain(
    name: str, request: Request, services: ServicesDep
) -> Response | ExplainResponse | MultiExplainResponse | DetectExplainResponse | AnswerExplainResponse:
    """Predictions plus saliency maps; `Accept: image/png` gives the overlay, `text/event-stream` progress."""
    label(request, model=name, method="")
    field, inputs, spec = await parse(request, services.settings, ExplainRequest, ExplainSpec)
    names = [m if isinstance(m, str) else str(m.get("name")) for m in spec.method_specs()]
    label(request, model=name, method=names[0] if len(names) == 1 else "multiple")
    accept = request.headers.get("accept", "")
    wants_png = "image/png" in accept
    if wants_png:
        if field != "images" or len(inputs) != 1 or spec.methods is not None:
            raise InvalidInput("Accept: image/png returns one overlay: send one image and one method", "images")
        spec.output.overlay = True
    seconds = deadlines.seconds_for(spec.timeout_ms, services.settings.request_timeout_s)
    metrics = services.runner.metrics

    async def work(
        progress: Progress | None = None,
    ) -> ExplainResponse | MultiExplainResponse | DetectExplainResponse | AnswerExplainResponse:
        job = core.explain(
            services,
            name,
            field,
            inputs,
            spec.method_specs(),
            several=spec.methods is not None,
            target=plain(spec.target),
            objective=spec.objective,
            top_k=spec.top_k,
            output=spec.output,
            evaluate=spec.evaluate,
            progress=progress,
            generate=spec.generate,
            include_generated=spec.include_generated,
        )
        result = await deadlines.within(seconds, job, metrics, name)
        if isinstance(result, AnswersExplained):
            return answers_response(result)
        response = explain_response(result, spec.methods is not None)
        metrics.images.labels(name, names[0] if len(names) == 1 else "multiple").inc(len(response.results))
        return response

    if wants_events(accept):
        # Until the first progress event the route itself waits: a client that leaves then is noticed too.
        return await cancel_on_disconnect(request, progress_stream(work))
    response = await cancel_on_disconnect(request, work())
    if wants_png and isinstance(response, DetectExplainResponse):  # every box on one picture
        png = base64.b64decode(response.results[0].overlay_png or "")
        method = json.dumps(response.methods[0], separators=(",", ":"))
        found = str(len(response.results[0].detections))
        headers = {"X-Saliency-Method": method, "X-Saliency-Detections": found}
        return Response(png, media_type="image/png", headers=headers)
    if wants_png:
        assert isinstance(response, ExplainResponse)
        png = base64.b64decode(response.results[0].overlay_png or "")
        return Response(png, media_type="image/png", headers=png_headers(response))
    return response


def png_headers(response: ExplainResponse) -> dict[str, str]:
    """What an overlay PNG shows, since the picture cannot say: the class explained and the method.

    Header values must be ASCII: the label is percent-encoded UTF-8, the method is JSON with \\u escapes.
    """
    target = response.results[0].target
    headers = {
        "X-Saliency-Target": str(target.index),
        "X-Saliency-Probability": repr(target.probability),  # the JSON body's number, digit for digit
        "X-Saliency-Method": json.dumps(response.method, separators=(",", ":")),
    }
    if target.label is not None:
        headers["X-Saliency-Label"] = quote(target.label, safe="")
    return headers
