"""A Python client for saliency-service: `Client` (blocking) and `AsyncClient` (asyncio), both on httpx.

    from saliency_client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as client:
        answer = client.explain("shapes", "my.png", method="gradcam", output={"overlay": True})
        result = answer.results[0]
        result.target.label, result.explanation.saliency, result.explanation.overlay

Inputs are paths, bytes, PIL images or uint8 numpy arrays (H x W or H x W x 3|4), or texts for text models;
maps come back as numpy arrays in the dtype the server sent, overlays and heatmaps as PIL images. Every
failure raises `ServiceError` with the server's `code`, `message`, `field` and `request_id`.
"""

__version__ = "0.1.0"  # before the imports: calls.py sends it in the User-Agent

from .aio import AsyncClient
from .calls import EvaluateOptions, OutputOptions, Progress
from .convert import ImageInput
from .errors import ServiceError
from .language import Answered, AnswerExplanation, AnswersExplained, Continuation, Generated, GenerateOptions, LMToken
from .results import (
    Checked,
    Detected,
    Detection,
    DetectionsExplained,
    DetectionsResult,
    Explained,
    ExplainResult,
    Explanation,
    Faithfulness,
    MethodCheck,
    Predicted,
    Prediction,
    Token,
)
from .sync import Client

__all__ = [
    "__version__",
    "AnswerExplanation",
    "Answered",
    "AnswersExplained",
    "Continuation",
    "GenerateOptions",
    "Generated",
    "LMToken",
    "AsyncClient",
    "Checked",
    "Detected",
    "Detection",
    "DetectionsExplained",
    "DetectionsResult",
    "MethodCheck",
    "Client",
    "EvaluateOptions",
    "ExplainResult",
    "Explained",
    "Explanation",
    "Faithfulness",
    "ImageInput",
    "OutputOptions",
    "Predicted",
    "Prediction",
    "Progress",
    "ServiceError",
    "Token",
]
