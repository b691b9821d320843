"""POST /v1/models/{name}/sanity: do a method's maps change when the model's parameters or labels are randomized?"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response

from ...core import deadlines, sanity
from ...errors import InvalidInput
from ..deps import ServicesDep, label
from ..disconnect import cancel_on_disconnect
from ..events import Progress, progress_stream, wants_events
from .bodies import parse
from .explain import ERRORS, body_doc, plain
from .responses import prediction
from .sanity_schemas import MethodCheck, SanityRequest, SanityResponse, SanitySpec
from .schemas import Detection

router = APIRouter(prefix="/v1/models", tags=["trust"])


def response(checked: sanity.Checked) -> SanityResponse:
    return SanityResponse(
        model=checked.model,
        test=checked.test,
        reference_model=checked.reference_model,
        targets=[prediction(t) for t in checked.targets],
        results=[MethodCheck.model_validate(r, from_attributes=True) for r in checked.results],
        detections=None
        if checked.detections is None
        else [[Detection(**asdict(d)) for d in image] for image in checked.detections],
        answers=checked.answers,
        timing_ms=checked.timing_ms,
    )


@router.post(
    "/{name}/sanity",
    responses={
        **ERRORS,
        200: {
            "description": "The JSON body; with `Accept: text/event-stream`, `progress` events then one `result`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
    openapi_extra=body_doc(SanityRequest, SanitySpec),
    response_model=SanityResponse,
)
async def check(name: str, request: Request, services: ServicesDep) -> Response | SanityResponse:
    """Sanity checks (Adebayo et al. 2018): similarity of each method's maps to those of randomized models."""
    label(request, model=name, method="sanity")
    field, inputs, spec = await parse(request, services.settings, SanityRequest, SanitySpec)
    if spec.methods is None:
        raise InvalidInput("methods: Field required", "methods")
    methods = list(spec.methods)
    seconds = deadlines.seconds_for(spec.timeout_ms, services.settings.request_timeout_s)

    async def work(progress: Progress | None = None) -> SanityResponse:
        job = sanity.sanity(
            services,
            name,
            field,
            inputs,
            methods,
            test=spec.test,
            reference_model=spec.reference_model,
            target=plain(spec.target),
            seed=spec.seed,
            progress=progress,
        )
        return response(await deadlines.within(seconds, job, services.runner.metrics, name))

    if wants_events(request.headers.get("accept", "")):
        return await cancel_on_disconnect(request, progress_stream(work))
    return await cancel_on_disconnect(request, work())
