"""The v1 JSON of the core's domain results: the only place the response schemas are filled in."""

from __future__ import annotations

from dataclasses import asdict

from ...core import Explained, Predicted, Ranked
from ...core.detect import Detected, DetectionsExplained
from .schemas import (
    DetectExplainResponse,
    DetectExplainResult,
    Detection,
    DetectPredictResponse,
    DetectPredictResult,
    ExplainedDetection,
    ExplainResponse,
    ExplainResult,
    MethodResult,
    MultiExplainResponse,
    MultiExplainResult,
    Prediction,
    PredictResponse,
    PredictResult,
)


def prediction(ranked: Ranked) -> Prediction:
    return Prediction(**asdict(ranked))


def predict_response(result: Predicted | Detected) -> PredictResponse | DetectPredictResponse:
    if isinstance(result, Detected):
        found = [DetectPredictResult(detections=[Detection(**asdict(d)) for d in image]) for image in result.detections]
        return DetectPredictResponse(model=result.model, results=found, timing_ms=result.timing_ms)
    results = [PredictResult(predictions=[prediction(r) for r in top]) for top in result.predictions]
    return PredictResponse(model=result.model, results=results, timing_ms=result.timing_ms)


def detections_response(result: DetectionsExplained) -> DetectExplainResponse:
    """Per image, per box: the detection and one `explanations` entry per method."""
    results = [
        DetectExplainResult(
            detections=[
                ExplainedDetection(
                    **asdict(d),
                    explanations=[MethodResult(method=m, **f) for m, f in zip(result.methods, fields, strict=True)],
                )
                for d, fields in zip(found, maps, strict=True)
            ],
            overlay_png=combined,
        )
        for found, maps, combined in zip(result.detections, result.maps, result.combined, strict=True)
    ]
    timing = result.timing_ms
    return DetectExplainResponse(model=result.model, methods=result.methods, results=results, timing_ms=timing)


def explain_response(
    result: Explained | DetectionsExplained, several: bool
) -> ExplainResponse | MultiExplainResponse | DetectExplainResponse:
    """One method's fields on each result, or with `several` one `explanations` entry per method."""
    if isinstance(result, DetectionsExplained):
        return detections_response(result)
    shared = [
        {"predictions": [prediction(r) for r in top], "target": prediction(target)}
        for top, target in zip(result.predictions, result.targets, strict=True)
    ]
    if not several:
        singles = [ExplainResult(**shared[i], **maps[0]) for i, maps in enumerate(result.maps)]
        return ExplainResponse(
            model=result.model,
            method=result.methods[0],
            objective=result.objective,
            results=singles,
            timing_ms=result.timing_ms,
        )
    multi = [
        MultiExplainResult(
            **shared[i],
            explanations=[MethodResult(method=m, **fields) for m, fields in zip(result.methods, maps, strict=True)],
        )
        for i, maps in enumerate(result.maps)
    ]
    return MultiExplainResponse(
        model=result.model,
        methods=result.methods,
        objective=result.objective,
        results=multi,
        timing_ms=result.timing_ms,
    )
