"""Explainers: one file per method behind a registry; base.py holds the contract."""

from .base import Capabilities, Cost, ExplainContext, Explainer, Explanation, Objective, Params, PixelSpace
from .engine import explain
from .registry import Registry, default_registry

__all__ = [
    "Capabilities",
    "Cost",
    "ExplainContext",
    "Explainer",
    "Explanation",
    "Objective",
    "Params",
    "PixelSpace",
    "Registry",
    "default_registry",
    "explain",
]
