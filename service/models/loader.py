"""Builds a model from its spec. Only operator-configured code and weights are loaded, never a client's:
state_dicts go through torch.load(weights_only=True) or safetensors, which hold tensors only."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from . import detection, pretrained, zoo
from .spec import ModelSpec

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """Why a configured model cannot be served.

    `str(exc)` is the short reason clients see (model state, readiness, 503 bodies); `detail` has the paths
    and library messages an operator needs, and goes to the log only.
    """

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def build(spec: ModelSpec) -> nn.Module:
    scheme, _, ref = spec.architecture.partition(":")
    try:
        if scheme == "torchscript":
            if not Path(ref).is_file():
                raise ModelLoadError("cannot build the TorchScript model: file not found", f"{ref} does not exist")
            return torch.jit.load(ref, map_location="cpu")
        if scheme == "torchvision":
            extra = pretrained.builder_kwargs(ref, torchvision_weights(spec)) if spec.pretrained else {}
            if spec.kind == "detection":
                extra = {**detection.builder_kwargs(ref, spec.input_size), **extra}
            return torchvision.models.get_model(ref, weights=None, num_classes=spec.num_classes, **extra)
        if scheme == "timm":
            return zoo.build_timm(ref, spec.num_classes)
        if scheme == "transformers":
            return zoo.build_transformers(ref)
        module_name, _, attr = ref.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(num_classes=spec.num_classes)
    except (ImportError, AttributeError, ValueError, KeyError, RuntimeError, OSError, TypeError) as exc:
        shown = "torchscript" if scheme == "torchscript" else spec.architecture
        raise ModelLoadError(
            f"cannot build {shown!r}: {type(exc).__name__}", f"cannot build {spec.architecture!r}: {exc}"
        ) from exc


def load(spec: ModelSpec) -> nn.Module:
    """Architecture + weights, in eval mode, on the CPU."""
    model = build(spec)
    path = spec.weights
    if spec.pretrained is not None:
        try:
            path = pretrained.checkpoint(torchvision_weights(spec))
        except pretrained.DownloadFailed as exc:
            raise ModelLoadError(str(exc), exc.detail) from exc
    if path is None:
        if spec.architecture.startswith("transformers:"):
            return model.eval()  # the directory's own weights
        log.warning("MODEL %s HAS NO WEIGHTS: serving random weights; its outputs mean nothing", spec.name)
        return model.eval()
    if not path.is_file():
        raise ModelLoadError("cannot read weights: file not found", f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            state = safetensors.torch.load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file raises anything from OSError to IndexError or UnpicklingError
        raise ModelLoadError(
            "cannot read weights: not a tensors-only PyTorch checkpoint or safetensors file",
            f"cannot read weights {path}: {exc}",
        ) from exc
    if not isinstance(state, dict):
        raise ModelLoadError("weights file is not a state_dict", f"{path} holds a {type(state).__name__}")
    mismatch = fit_report(model.state_dict(), state)
    if mismatch:
        raise ModelLoadError(
            f"weights do not fit the architecture: {mismatch}", f"{path} does not fit {spec.architecture}: {mismatch}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def fit_report(expected: Mapping[str, torch.Tensor], given: Mapping[str, object]) -> str:
    """'' when the state_dict fits, else counts such as '3 missing keys, 1 shape mismatch'."""
    missing = len(expected.keys() - given.keys())
    unexpected = len(given.keys() - expected.keys())
    shapes = 0
    for key in expected.keys() & given.keys():
        value = given[key]
        shapes += not isinstance(value, torch.Tensor) or value.shape != expected[key].shape
    parts = [(missing, "missing key", "missing keys"), (unexpected, "unexpected key", "unexpected keys")]
    parts.append((shapes, "shape mismatch", "shape mismatches"))
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n)


def torchvision_weights(spec: ModelSpec) -> WeightsEnum:
    assert spec.pretrained is not None
    return pretrained.resolve(spec.architecture.partition(":")[2], spec.pretrained)


def read_labels(spec: ModelSpec) -> list[str] | None:
    """The labels file's, else the pretrained weights' categories or a transformers config's, else none."""
    if spec.labels is None:
        scheme, _, ref = spec.architecture.partition(":")
        if scheme == "transformers":
            return zoo.transformers_labels(Path(ref))
        return list(torchvision_weights(spec).meta["categories"]) if spec.pretrained else None
    try:
        labels = [line.strip() for line in spec.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        why = "file not found" if isinstance(exc, FileNotFoundError) else "unreadable or not UTF-8"
        raise ModelLoadError(f"cannot read labels: {why}", f"cannot read labels {spec.labels}: {exc}") from exc
    if len(labels) != spec.num_classes:
        raise ModelLoadError(f"labels file has {len(labels)} labels for {spec.num_classes} classes")
    return labels
