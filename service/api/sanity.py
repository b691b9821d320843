"""POST /v1/models/{name}/sanity: do a method's maps change when the model's parameters or labels are randomized?"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictInt

from .. import deadlines, sanity
from ..core import Ranked
from ..errors import InvalidInput
from ..schemas import MAX_METHODS, Inputs, MethodSpec, Prediction, Strict, TargetItem, TimeoutMs
from .bodies import parse
from .deps import ServicesDep, label
from .disconnect import cancel_on_disconnect
from .events import Progress, progress_stream, wants_events
from .explain import ERRORS, body_doc

router = APIRouter(prefix="/v1/models", tags=["trust"])


METHODS_DOC = "The methods to check (required)."


class SanitySpec(Strict):
    """A sanity request without its inputs: a multipart spec or a raw image's query string, where `methods`
    may come from a later part (so it is checked after merging, in the route)."""

    methods: list[MethodSpec] | None = Field(None, min_length=1, max_length=MAX_METHODS, description=METHODS_DOC)
    target: TargetItem | list[TargetItem] = Field(
        "predicted", description="As in explain; every map of a method explains the class the served model's did."
    )
    test: Literal["model_randomization", "data_randomization"] = Field(
        "model_randomization",
        description="model_randomization: re-initialize the model's top-level blocks one by one from the output "
        "down, cumulatively, on a copy (the served model is untouched). data_randomization: compare with "
        "`reference_model`, the same architecture trained on shuffled labels.",
    )
    reference_model: str | None = Field(None, description="data_randomization: the shuffled-labels model's name.")
    seed: StrictInt = Field(0, ge=0, le=2**31 - 1, description="Seed of the re-initialization.")
    timeout_ms: TimeoutMs = None


class SanityRequest(SanitySpec, Inputs):
    methods: list[MethodSpec] = Field(min_length=1, max_length=MAX_METHODS, description=METHODS_DOC)


class Threshold(BaseModel):
    spearman_below: float
    ssim_below: float | None
    rule: str


class MethodCheck(BaseModel):
    method: dict[str, Any] = Field(description="The method with every parameter, defaults and layer filled in.")
    steps: list[str] = Field(
        description='What is randomized at each step: the blocks so far ("fc", "fc+block4", ...) or the reference '
        "model."
    )
    spearman: list[float] = Field(description="Per step: Spearman rank correlation of |map| with the original, mean.")
    ssim: list[float | None] = Field(description="Per step: SSIM of the maps scaled to [0, 1] (null for texts).")
    verdict: Literal["pass", "fail"] = Field(description="pass: the maps stop resembling the original.")
    threshold: Threshold


class SanityResponse(BaseModel):
    model: str
    test: Literal["model_randomization", "data_randomization"]
    reference_model: str | None
    targets: list[Prediction] = Field(description="Per input, the class every map explains (by the served model).")
    results: list[MethodCheck]
    timing_ms: dict[str, float]


def prediction(r: Ranked) -> Prediction:
    return Prediction(index=r.index, label=r.label, probability=r.probability, logit=r.logit)


def response(checked: sanity.Checked) -> SanityResponse:
    return SanityResponse(
        model=checked.model,
        test=checked.test,
        reference_model=checked.reference_model,
        targets=[prediction(t) for t in checked.targets],
        results=[MethodCheck.model_validate(r, from_attributes=True) for r in checked.results],
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
            target=spec.target,
            seed=spec.seed,
            progress=progress,
        )
        return response(await deadlines.within(seconds, job, services.runner.metrics, name))

    if wants_events(request.headers.get("accept", "")):
        return await cancel_on_disconnect(request, progress_stream(work))
    return await cancel_on_disconnect(request, work())
