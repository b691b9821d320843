"""The client's results: the v1 JSON as dataclasses, with maps as numpy arrays and PNGs as PIL images."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .convert import decode_array, open_png, png_bytes
from .errors import ServiceError

if TYPE_CHECKING:
    from .language import AnswersExplained, Generated


@dataclass(frozen=True)
class Prediction:
    """One class of one input."""

    index: int
    label: str | None
    probability: float
    logit: float


@dataclass(frozen=True)
class Token:
    """A token of a text: its characters and offsets in the text (None for special tokens) and its score."""

    text: str
    start: int | None
    end: int | None
    special: bool
    score: float | None


@dataclass(frozen=True)
class Faithfulness:
    """A deletion or insertion curve of one map, its AUC and a random ranking's."""

    auc: float
    random_auc: float
    curve: list[float]


@dataclass
class Explanation:
    """One method's map of one input. `saliency` keeps the dtype the server sent (float32, float16 or uint8);
    `saliency_range` is the (min, max) of the map before that encoding."""

    method: dict[str, Any]
    saliency: np.ndarray | None
    saliency_range: tuple[float, float] | None
    heatmap_png: bytes | None
    overlay_png: bytes | None
    diagnostics: dict[str, float | int]
    tokens: list[Token] | None = None
    html: str | None = None
    faithfulness: dict[str, Faithfulness] | None = None

    @cached_property
    def heatmap(self) -> Image.Image | None:
        return open_png(self.heatmap_png)

    @cached_property
    def overlay(self) -> Image.Image | None:
        return open_png(self.overlay_png)


class OneMethod:
    """`explanation`: the one map of a one-method request."""

    explanations: list[Explanation]

    @property
    def explanation(self) -> Explanation:
        if len(self.explanations) != 1:
            raise ValueError(f"{len(self.explanations)} explanations (one per method): use .explanations")
        return self.explanations[0]


@dataclass
class ExplainResult(OneMethod):
    """One input: its top predictions, the class explained, and one explanation per method."""

    predictions: list[Prediction]
    target: Prediction
    explanations: list[Explanation]


class OneRequestMethod:
    """`method`: the method of a one-method request, with every parameter the server filled in."""

    methods: list[dict[str, Any]]

    @property
    def method(self) -> dict[str, Any]:
        if len(self.methods) != 1:
            raise ValueError(f"{len(self.methods)} methods: use .methods")
        return self.methods[0]


@dataclass
class Explained(OneRequestMethod):
    """An explain call's answer: one result per input, in order."""

    model: str
    methods: list[dict[str, Any]]
    objective: str
    results: list[ExplainResult]
    timing_ms: dict[str, float]
    request_id: str | None = None


@dataclass
class Predicted:
    """A predict call's answer: the top predictions of each input, in order."""

    model: str
    predictions: list[list[Prediction]]
    timing_ms: dict[str, float]
    request_id: str | None = None


@dataclass
class MethodCheck:
    """One method's sanity check: its similarity to the original maps at each step, and the verdict."""

    method: dict[str, Any]
    steps: list[str]  # what was randomized at each step, or the reference model
    spearman: list[float]
    ssim: list[float | None]
    verdict: str  # "pass" or "fail"
    threshold: dict[str, Any]


@dataclass
class Checked:
    """A sanity call's answer: per method, the curves and verdict; per input, the class every map explains."""

    model: str
    test: str
    reference_model: str | None
    targets: list[Prediction]
    results: list[MethodCheck]
    timing_ms: dict[str, float]
    request_id: str | None = None

    def verdicts(self) -> dict[str, str]:
        """{method name: "pass" or "fail"}."""
        return {r.method["name"]: r.verdict for r in self.results}


def parse_checked(body: dict[str, Any], request_id: str | None = None) -> Checked:
    try:
        targets = [Prediction(**t) for t in body["targets"]]
        results = [MethodCheck(**r) for r in body["results"]]
        return Checked(
            body["model"], body["test"], body["reference_model"], targets, results, body["timing_ms"], request_id
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(exc, request_id) from None


def parse_explained(body: dict[str, Any], request_id: str | None = None) -> Explained:
    """The JSON of /explain, single-method (`method`, fields on each result) or several (`methods`)."""
    try:
        several = "methods" in body
        methods = body["methods"] if several else [body["method"]]
        results = []
        for item in body["results"]:
            entries = item["explanations"] if several else [{**item, "method": methods[0]}]
            results.append(
                ExplainResult(
                    predictions=[Prediction(**p) for p in item["predictions"]],
                    target=Prediction(**item["target"]),
                    explanations=[explanation(entry) for entry in entries],
                )
            )
        return Explained(body["model"], methods, body["objective"], results, body["timing_ms"], request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(exc, request_id) from None


def explanation(entry: dict[str, Any]) -> Explanation:
    saliency = entry.get("saliency")
    tokens, faithfulness = entry.get("tokens"), entry.get("faithfulness")
    return Explanation(
        method=entry["method"],
        saliency=decode_array(saliency) if saliency is not None else None,
        saliency_range=(saliency["min"], saliency["max"]) if saliency is not None else None,
        heatmap_png=png_bytes(entry.get("heatmap_png")),
        overlay_png=png_bytes(entry.get("overlay_png")),
        diagnostics=entry.get("diagnostics", {}),
        tokens=[Token(**t) for t in tokens] if tokens is not None else None,
        html=entry.get("html"),
        faithfulness={k: Faithfulness(**v) for k, v in faithfulness.items()} if faithfulness is not None else None,
    )


def parse_predicted(body: dict[str, Any], request_id: str | None = None) -> Predicted:
    try:
        predictions = [[Prediction(**p) for p in item["predictions"]] for item in body["results"]]
        return Predicted(body["model"], predictions, body["timing_ms"], request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(exc, request_id) from None


@dataclass
class Detection(OneMethod):
    """One box of one image: x0, y0, x1, y1 in the image's pixels, its class, its score; after explain, its
    maps, one per method."""

    box: tuple[float, float, float, float]
    label: str | None
    index: int
    score: float
    explanations: list[Explanation] = field(default_factory=list)


@dataclass
class Detected:
    """A detection model's predict answer: each image's detections, best first."""

    model: str
    detections: list[list[Detection]]
    timing_ms: dict[str, float]
    request_id: str | None = None


@dataclass
class DetectionsResult:
    """One image's explained boxes, and the picture of all of them (with output overlay)."""

    detections: list[Detection]
    overlay_png: bytes | None

    @cached_property
    def overlay(self) -> Image.Image | None:
        return open_png(self.overlay_png)


@dataclass
class DetectionsExplained(OneRequestMethod):
    """A detection model's explain answer: per image, per box, one map per method."""

    model: str
    methods: list[dict[str, Any]]
    results: list[DetectionsResult]
    timing_ms: dict[str, float]
    request_id: str | None = None


def detection(item: dict[str, Any], methods: list[dict[str, Any]] | None = None) -> Detection:
    x0, y0, x1, y1 = (float(v) for v in item["box"])
    entries = [{**e, "method": e["method"]} for e in item.get("explanations", [])]
    return Detection((x0, y0, x1, y1), item["label"], item["index"], item["score"], [explanation(e) for e in entries])


def parse_prediction(body: dict[str, Any], request_id: str | None = None) -> Predicted | Detected | Generated:
    """/predict's JSON: a classifier's top classes, a detector's boxes, or a causal LM's continuations."""
    if "generation" in body:
        from .language import parse_generated  # language.py builds on this module

        return parse_generated(body, request_id)
    if not (body.get("results") and "detections" in body["results"][0]):
        return parse_predicted(body, request_id)
    try:
        found = [[detection(d) for d in item["detections"]] for item in body["results"]]
        return Detected(body["model"], found, body["timing_ms"], request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(exc, request_id) from None


def parse_explanation(
    body: dict[str, Any], request_id: str | None = None
) -> Explained | DetectionsExplained | AnswersExplained:
    """/explain's JSON: a classifier's maps, a detector's per box, or a causal LM's per answer token."""
    if "include_generated" in body:
        from .language import parse_answers

        return parse_answers(body, request_id)
    if not (body.get("results") and "detections" in body["results"][0]):
        return parse_explained(body, request_id)
    try:
        results = [
            DetectionsResult([detection(d) for d in item["detections"]], png_bytes(item.get("overlay_png")))
            for item in body["results"]
        ]
        return DetectionsExplained(body["model"], body["methods"], results, body["timing_ms"], request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(exc, request_id) from None


def invalid(exc: Exception, request_id: str | None) -> ServiceError:
    what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
    return ServiceError("invalid_response", f"not a v1 response: {what}", request_id=request_id)
