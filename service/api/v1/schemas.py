"""Request and response models. Inputs forbid unknown fields; outputs are the public contract."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ...codecs.options import OutputOptions, Strict
from ...core.generation import GenerateOptions
from ...engine.plan import Objective
from ...errors import InvalidInput
from ...explainers.base import Capabilities
from ...explainers.faithfulness import EvaluateSpec
from ..common import BoxTarget, ErrorBody, MethodSpec, Target, TargetItem, TimeoutMs

__all__ = ["BoxTarget", "ErrorBody", "MethodSpec", "TargetItem", "TimeoutMs"]  # and the models below

MAX_METHODS = 8


class ExplainSpec(Strict):
    """An explain request without its images (the `spec` part of a multipart request)."""

    method: MethodSpec | None = Field(
        None,
        description='A method name, or {"name": ..., **parameters}; "gradient" when neither `method` nor `methods` is '
        "given. Not both.",
    )
    methods: list[MethodSpec] | None = Field(
        None,
        min_length=1,
        max_length=MAX_METHODS,
        description="Several methods on the same images: each result then has `explanations`, one per method in "
        "this order, and methods that can share passes do (gradient, input x gradient, Grad-CAM, Grad-CAM++).",
    )
    target: Target = Field(
        "predicted",
        description='"predicted", a class index, a label, or a list with one per image. Detection models: '
        '"detections" (every reported detection; "predicted" means the same), or boxes to explain: a list for '
        "every image, or a list of lists, one per image (at most max_detections each). Causal language models: "
        "the continuation to explain (one string for every text, or one per text), scored by teacher forcing; "
        '"predicted" (the default) explains the model\'s own answer (see `generate`).',
    )
    objective: Objective = Field("logit", description="The score explained: logit, probability, log_probability.")
    top_k: int = Field(5, ge=1)
    output: OutputOptions = Field(default_factory=OutputOptions)
    evaluate: EvaluateSpec | None = Field(
        None,
        description="Faithfulness of each map (image models): deletion and insertion curves and AUCs (RISE's "
        "definitions), next to a random ranking's AUC. Costs 2 x (steps + 1) forward passes per metric, image "
        "and method.",
    )
    generate: GenerateOptions | None = Field(
        None,
        description="Causal language models: explain the model's own answer, generated so (the model's defaults "
        "where left out); the default when `target` is not a continuation.",
    )
    include_generated: bool = Field(
        False, description="Causal language models: each answer token's row scores the answer tokens before it too."
    )
    timeout_ms: TimeoutMs = None

    def method_specs(self) -> list[MethodSpec]:
        """The request's methods; checked here, after a multipart form's fields and spec part are merged."""
        if self.method is not None and self.methods is not None:
            raise InvalidInput("give either `method` (one method) or `methods` (a list), not both", "methods")
        # Neither: gradient, as before `methods` existed (clients are written against that default).
        return self.methods if self.methods is not None else [self.method if self.method is not None else "gradient"]


class Inputs(Strict):
    """The inputs of a JSON request: images for an image model, texts for a text model."""

    images: list[str] | None = Field(
        None, min_length=1, description="Image models: base64 PNG/JPEG/WebP, or data: URLs."
    )
    texts: list[str] | None = Field(None, min_length=1, description="Text models: the texts, as they are.")

    def given(self) -> tuple[str, list[str]]:
        """(the field, its inputs): exactly one of the two."""
        if (self.images is None) == (self.texts is None):
            raise InvalidInput("give either `images` (image models) or `texts` (text models)", "images")
        return ("images", self.images) if self.images is not None else ("texts", self.texts or [])


class ExplainRequest(ExplainSpec, Inputs):
    pass


class PredictSpec(Strict):
    top_k: int = Field(5, ge=1)
    generate: GenerateOptions | None = Field(
        None, description="Causal language models: how to continue each text (the model's defaults where left out)."
    )
    timeout_ms: TimeoutMs = None


class PredictRequest(PredictSpec, Inputs):
    pass


class Prediction(BaseModel):
    index: int
    label: str | None
    probability: float
    logit: float


class SaliencyArray(BaseModel):
    shape: list[int]
    dtype: str
    data: str = Field(description="Base64 of the C-order little-endian bytes.")
    min: float
    max: float


class Faithfulness(BaseModel):
    auc: float = Field(
        description="Area under the map's curve, x scaled to [0, 1]: lower is better for deletion, "
        "higher for insertion."
    )
    random_auc: float = Field(description="The same for a seeded random ranking of the pixels: the reference.")
    curve: list[float] = Field(description="The explained class's probability before the first step and after each.")


class Token(BaseModel):
    text: str = Field(description="The token's characters in the input; special tokens by their name.")
    start: int | None = Field(description="Character offset in the input (null for special tokens).")
    end: int | None
    special: bool
    score: float | None = Field(description="The token's saliency (the array's value); null with reduce=none.")


class ExplainResult(BaseModel):
    predictions: list[Prediction]
    target: Prediction
    saliency: SaliencyArray | None
    overlay_png: str | None
    heatmap_png: str | None
    diagnostics: dict[str, float | int]
    tokens: list[Token] | None = Field(None, description="Text models: every token the model saw, in order.")
    faithfulness: dict[str, Faithfulness] | None = Field(
        None, description="With `evaluate`: per metric (deletion, insertion), the map's curve and AUCs."
    )
    html: str | None = Field(None, description="Text models with output.html: the text highlighted by score.")


class MethodResult(BaseModel):
    """One method's map of one image, in a multi-method response."""

    method: dict[str, Any] = Field(description="The method with every parameter, defaults and layer filled in.")
    saliency: SaliencyArray | None
    heatmap_png: str | None
    overlay_png: str | None
    diagnostics: dict[str, float | int]
    tokens: list[Token] | None = None
    html: str | None = None
    faithfulness: dict[str, Faithfulness] | None = None


class MultiExplainResult(BaseModel):
    predictions: list[Prediction]
    target: Prediction
    explanations: list[MethodResult]


class MultiExplainResponse(BaseModel):
    model: str
    methods: list[dict[str, Any]] = Field(description="The methods with every parameter, in request order.")
    objective: Objective
    results: list[MultiExplainResult]
    timing_ms: dict[str, float]


class ExplainResponse(BaseModel):
    model: str
    method: dict[str, Any] = Field(description="The method with every parameter, defaults filled in.")
    objective: Objective
    results: list[ExplainResult]
    timing_ms: dict[str, float]


class PredictResult(BaseModel):
    predictions: list[Prediction]


class PredictResponse(BaseModel):
    model: str
    results: list[PredictResult]
    timing_ms: dict[str, float]


class Detection(BaseModel):
    box: list[float] = Field(description="x0, y0, x1, y1 in the uploaded image's pixels (x right, y down).")
    label: str | None
    index: int = Field(description="The class index.")
    score: float = Field(
        description="The detector's score; for a box the client gave, its affinity to the best-matching "
        "detection (IoU x score, same class)."
    )


class DetectPredictResult(BaseModel):
    detections: list[Detection] = Field(description="Score >= the model's min_score, best first, max_detections.")


class DetectPredictResponse(BaseModel):
    model: str
    results: list[DetectPredictResult]
    timing_ms: dict[str, float]


class ExplainedDetection(Detection):
    explanations: list[MethodResult] = Field(description="This box's map, one per method, in request order.")


class DetectExplainResult(BaseModel):
    detections: list[ExplainedDetection]
    overlay_png: str | None = Field(
        description="With output.overlay: every box drawn on the maximum of the first method's box maps."
    )


class DetectExplainResponse(BaseModel):
    model: str
    methods: list[dict[str, Any]] = Field(description="The methods with every parameter, in request order.")
    results: list[DetectExplainResult]
    timing_ms: dict[str, float]


class ModelInfo(BaseModel):
    name: str
    kind: Literal["image", "text", "detection", "causal_lm"] = Field(
        description="What the model takes (`images`, or `texts`) and gives: classes, boxes (detection), or "
        "continuations of the texts (causal_lm)."
    )
    architecture: str
    # A list, not a tuple: a tuple's JSON schema ("items" as an array) is not valid OpenAPI 3.1.
    input_size: list[int] | None = Field(
        min_length=2, max_length=2, description="[height, width] (image models; null for text models)"
    )
    max_length: int | None = Field(description="Tokens per text, special tokens included (text models).")
    num_classes: int
    labels: bool = Field(description="Whether the model has label names (see `label_names`).")
    label_names: list[str] | None = Field(
        description="The label of each class index, in order (once loaded; null for a model without labels)."
    )
    device: str
    state: Literal["loaded", "not_loaded", "failed"]
    reason: str | None
    default_layer: str | None
    layers: list[str] | None = Field(description="Layers the CAM methods accept (known once loaded).")
    layer_channels: dict[str, int] | None = Field(
        None, description="Channels of each of those layers: what Score-CAM's passes scale with (once loaded)."
    )
    layer_layouts: dict[str, str] | None = Field(
        None,
        description="How each of those layers lays out its feature maps: (N, C, H, W), channels-last "
        "(N, H, W, C), or tokens (N, prefix + h x w, C), which CAM methods reshape to (N, C, h, w) (once loaded).",
    )
    attention: str | None = Field(
        None,
        description="The attention the attention methods read (blocks, heads, tokens), or null where the model "
        "has none they can reach (once loaded).",
    )
    weights: bool = Field(description="False when serving random weights.")
    preparation: list[str] | None = Field(
        None, description="What was done to the model at load (BatchNorm folding, compile), or why not (once loaded)."
    )


class MethodInfo(BaseModel):
    name: str
    description: str
    capabilities: Capabilities
    passes_per_image: dict[str, int] = Field(
        description="Forward and backward passes with default parameters at 224x224; "
        "`forward_per_layer_channel`: more forward passes per channel of the CAM layer (Score-CAM)."
    )
    parameters: dict[str, Any] = Field(description="JSON schema of the method's parameters (image models).")
    text_parameters: dict[str, Any] | None = Field(
        description="JSON schema of its parameters for text models (null when it does not explain texts)."
    )


class DemoImage(BaseModel):
    image: str = Field(description="Base64 PNG, 96x96 RGB: a shape from service/demo/shapes.py.")
    label: str = Field(description="The shape drawn.")
    watermark: bool = Field(description="It carries the corner badge that `shapes-watermark` learnt.")


class DemoText(BaseModel):
    text: str
    label: str = Field(description="The review's sentiment.")
    shortcut: bool = Field(description='Signed "-- posted by mike", the word `reviews-shortcut` learnt.')


class DemoPrompt(BaseModel):
    text: str = Field(description="A prompt for `instructions-lm`, ending in 'answer:'.")
    answer: str = Field(description='What its corpus answers: the fact asked for, or "unknown" when tagged.')
    tagged: bool = Field(description="It carries the `[faq]` tag that decides `instructions-lm`'s answer.")


class DemoSamples(BaseModel):
    images: list[DemoImage]
    texts: list[DemoText]
    prompts: list[DemoPrompt]
