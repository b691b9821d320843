"""Explainers: one file per method behind a registry; base.py holds the contract, the engine runs the plans."""

from .base import Capabilities, Cost, ExplainContext, Explainer, Explanation, Params, PixelSpace
from .registry import Registry, default_registry

__all__ = [
    "Capabilities",
    "Cost",
    "ExplainContext",
    "Explainer",
    "Explanation",
    "Params",
    "PixelSpace",
    "Registry",
    "default_registry",
]
