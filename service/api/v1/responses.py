"""The v1 JSON of the core's domain results: the only place the response schemas are filled in."""

from __future__ import annotations

from dataclasses import asdict

from ...core import Explained, Predicted, Ranked
from .schemas import (
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


def predict_response(result: Predicted) -> PredictResponse:
    results = [PredictResult(predictions=[prediction(r) for r in top]) for top in result.predictions]
    return PredictResponse(model=result.model, results=results, timing_ms=result.timing_ms)


def explain_response(result: Explained, several: bool) -> ExplainResponse | MultiExplainResponse:
    """One method's fields on each result, or with `several` one `explanations` entry per method."""
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
