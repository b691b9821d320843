"""The Open Inference Protocol's JSON objects (KServe "Predict Protocol - Version 2"), and the explain parameter."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ...codecs.options import Strict
from ...engine.plan import Objective
from ...explainers.postprocess import Normalize, Reduce
from ..common import MethodSpec, Target

Dimension = Annotated[StrictInt, Field(ge=0, lt=2**63)]  # "representable as an unsigned 64-bit integer"
Parameters = dict[str, Any]


class Loose(BaseModel):
    """Protocol objects: their own fields strictly typed; parameters hold what other clients add."""

    model_config = ConfigDict(extra="forbid", strict=True)


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    binary_data_size: Annotated[StrictInt, Field(ge=0)] | None = Field(
        None, description="Binary tensor data extension: the tensor's bytes follow the JSON object."
    )


class RequestInput(Loose):
    name: StrictStr
    shape: list[Dimension]
    datatype: StrictStr
    parameters: InputParameters = Field(default_factory=InputParameters)
    data: list[Any] | None = Field(None, description="Row-major elements, flat or nested; absent with binary data.")


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    binary_data: StrictBool | None = Field(None, description="Return this output as binary data.")


class RequestOutput(Loose):
    name: StrictStr
    parameters: OutputParameters = Field(default_factory=OutputParameters)


class SaliencyOutput(Strict):
    reduce: Reduce | None = Field(
        None,
        description="Images: over channels, default max_abs, none keeps [N, C, H, W]. Texts: over the embedding, "
        "default sum for methods that multiply by the input, else l2; none is refused.",
    )
    normalize: Normalize | None = Field(
        None, description="Per input; default minmax ([0, 1]) for images, percentile ([-1, 1], signed) for texts."
    )


class ExplainParameter(Strict):
    """The `explain` request parameter: one method on every input, as v1's explain request gives it."""

    method: MethodSpec = Field("gradient", description='A method name, or {"name": ..., **parameters}.')
    target: Target = Field(
        "predicted",
        description='"predicted", a class index, a label, or a list with one per input. Detection models: '
        '"detections" (the default; "predicted" means the same) or boxes, as v1\'s target: a list of '
        '{"box": [x0, y0, x1, y1], "label"} for every input, or a list of them per input.',
    )
    objective: Objective = "logit"
    output: SaliencyOutput = Field(default_factory=SaliencyOutput)


class CausalExplainParameter(Strict):
    """The `explain` parameter for a causal language model: one method over each answer token, as v1's."""

    method: MethodSpec = Field("gradient", description='A method name, or {"name": ..., **parameters}.')
    target: StrictStr | list[StrictStr] = Field(
        "predicted",
        description='The continuation to explain (one for every prompt, or a list of one per prompt); "predicted" '
        "(the default): the model's own answer, generated with parameters.generate.",
    )
    include_generated: StrictBool = Field(False, description="Score the earlier answer tokens too.")


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    binary_data_output: StrictBool = Field(False, description="Return every output as binary data by default.")
    timeout: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Deadline in microseconds (tritonclient's `timeout`); the server's maximum caps it."
    )
    # Checked as ExplainParameter by the route, so that its errors name their field from the request's root.
    explain: dict[str, Any] | StrictStr | None = Field(
        None,
        description="Add a `saliency` (texts: `scores`) output: an ExplainParameter object (method, target, "
        "objective, output), or the same object as a JSON string. Causal language models: a "
        "CausalExplainParameter (method, target, include_generated), which explains their answers.",
    )
    generate: dict[str, Any] | StrictStr | None = Field(
        None,
        description="Causal language models: how to generate (v1's generate: max_new_tokens, do_sample, "
        "temperature, top_p, seed), as an object or a JSON string; the model's defaults where left out.",
    )


class InferenceRequest(Loose):
    id: StrictStr | None = None
    model_name: StrictStr | None = Field(None, description="Ignored: the URL names the model.")
    model_version: StrictStr | None = Field(None, description="Ignored: models are not versioned.")
    parameters: RequestParameters = Field(default_factory=RequestParameters)
    inputs: list[RequestInput] = Field(min_length=1, max_length=8, description="One input: see the model's metadata.")
    outputs: list[RequestOutput] | None = Field(None, max_length=8, description="Default: every output.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[float | str] | None = Field(None, description="Row-major elements; BYTES as strings.")


class InferenceResponse(BaseModel):
    model_name: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a dimension of any size.")


class ModelMetadata(BaseModel):
    name: str
    platform: str
    inputs: list[TensorMetadata] = Field(description="A request carries one of these.")
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ErrorV2(BaseModel):
    error: str
