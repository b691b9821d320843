"""v1's sanity request and response bodies (POST /v1/models/{name}/sanity)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from .schemas import MAX_METHODS, BoxTarget, Detection, Inputs, MethodSpec, Prediction, Strict, TargetItem, TimeoutMs

METHODS_DOC = "The methods to check (required)."


class SanitySpec(Strict):
    """A sanity request without its inputs: a multipart spec or a raw image's query string, where `methods`
    may come from a later part (so it is checked after merging, in the route)."""

    methods: list[MethodSpec] | None = Field(None, min_length=1, max_length=MAX_METHODS, description=METHODS_DOC)
    target: TargetItem | list[TargetItem] | list[BoxTarget] | list[list[BoxTarget]] = Field(
        "predicted",
        description="As in explain; every map of a method explains the class the served model's did. For a "
        'detector, "predicted" (its detections) or boxes, as in explain: every map explains the same boxes.',
    )
    test: Literal["model_randomization", "data_randomization"] = Field(
        "model_randomization",
        description="model_randomization: re-initialize the model's top-level blocks one by one from the output "
        "down, cumulatively, on a copy (the served model is untouched); a transformer's blocks one at a time, a "
        "detector's parts (heads, FPN, backbone stages). data_randomization: compare with `reference_model`, the "
        "same architecture trained on shuffled labels (classifiers only).",
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
    targets: list[Prediction] = Field(
        description="Per input, the class every map explains (by the served model); empty for a detector."
    )
    detections: list[list[Detection]] | None = Field(
        None, description="A detector's: per image, the boxes every map explains (null for classifiers)."
    )
    answers: list[str] | None = Field(
        None, description="A causal language model's: per text, the answer every set of scores explains."
    )
    results: list[MethodCheck]
    timing_ms: dict[str, float]
