"""Builds a model from its spec. Only operator-configured code and weights are loaded, never a client's:
state_dicts go through torch.load(weights_only=True)."""

from __future__ import annotations

import importlib
import logging

import torch
import torchvision
from torch import nn

from .spec import ModelSpec

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The reason a configured model cannot be served; shown to clients as the model's state."""


def build(spec: ModelSpec) -> nn.Module:
    scheme, _, ref = spec.architecture.partition(":")
    try:
        if scheme == "torchscript":
            return torch.jit.load(ref, map_location="cpu")
        if scheme == "torchvision":
            return torchvision.models.get_model(ref, weights=None, num_classes=spec.num_classes)
        module_name, _, attr = ref.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(num_classes=spec.num_classes)
    except (ImportError, AttributeError, ValueError, KeyError, RuntimeError, OSError, TypeError) as exc:
        raise ModelLoadError(f"cannot build {spec.architecture!r}: {exc}") from exc


def load(spec: ModelSpec) -> nn.Module:
    """Architecture + weights, in eval mode, on the CPU."""
    model = build(spec)
    if spec.weights is None:
        log.warning("MODEL %s HAS NO WEIGHTS: serving random weights; its outputs mean nothing", spec.name)
    else:
        try:
            state = torch.load(spec.weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt file raises anything from OSError to IndexError or UnpicklingError
            raise ModelLoadError(f"cannot read weights {spec.weights}: {exc}") from exc
        if not isinstance(state, dict):
            raise ModelLoadError(f"{spec.weights} is not a state_dict")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights do not fit {spec.architecture}: {exc}") from exc
    return model.eval()


def read_labels(spec: ModelSpec) -> list[str] | None:
    if spec.labels is None:
        return None
    try:
        labels = [line.strip() for line in spec.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise ModelLoadError(f"cannot read labels {spec.labels}: {exc}") from exc
    if len(labels) != spec.num_classes:
        raise ModelLoadError(f"{spec.labels} has {len(labels)} labels for {spec.num_classes} classes")
    return labels
