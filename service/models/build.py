"""Builds what the pool keeps of a model, per kind: the prepared module, labels, layers and an example row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import loader
from .layers import relu_modules_only, spatial_layers
from .prepare import Prepared, PrepareOptions, prepare
from .spec import ModelSpec


@dataclass
class Built:
    prepared: Prepared
    labels: list[str] | None
    example: Tensor  # one row, for measuring a row's memory
    layers: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # CAM layers (images)
    default_layer: str | None = None
    tokenizer: Any = None
    relu_issue: str | None = "not an image model"  # why guided backprop cannot run on it; None: it can


def image(spec: ModelSpec, device: torch.device, options: PrepareOptions) -> Built:
    labels = loader.read_labels(spec)
    module = loader.load(spec).to(device)
    example = torch.zeros((1, spec.channels, *spec.input_size), device=device)
    try:
        layers = spatial_layers(module, example)  # also the warm-up pass
    except Exception as exc:  # the model cannot run on its declared input: a configuration error
        raise loader.ModelLoadError(
            f"warm-up forward failed on a {tuple(example.shape)} input: {type(exc).__name__}",
            f"warm-up forward failed: {exc}",
        ) from exc
    probe = torch.randn((2, *example.shape[1:]), generator=torch.Generator().manual_seed(0)).to(device)
    prepared = prepare(module, probe, options)
    names = [n for n, _ in layers]
    if spec.target_layer is not None and spec.target_layer not in names:
        raise loader.ModelLoadError(f"target_layer {spec.target_layer!r} has no spatial 4-D output")
    default_layer = spec.target_layer or (names[-1] if names else None)
    return Built(prepared, labels, example, layers, default_layer, relu_issue=relu_modules_only(module))


def text(spec: ModelSpec, device: torch.device) -> Built:
    from . import text as text_models

    model, tokenizer = text_models.load(spec)
    module = text_models.TextClassifier(model.to(device), text_models.embedding_layer_name(model, spec))
    labels = loader.read_labels(spec) if spec.labels is not None else text_models.config_labels(model)
    try:
        # The longest text a request may send: its row is the memory a row can take.
        encoded = tokenizer("x", padding="max_length", max_length=spec.max_length, truncation=True, return_tensors="pt")
        ids, mask = encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
        example = text_models.rows_of(module.embed(ids, mask).clone(), mask, ids)
        with torch.inference_mode():
            module(example)
    except Exception as exc:  # the model and its tokenizer do not fit together: a configuration error
        raise loader.ModelLoadError(
            f"warm-up forward failed on {spec.max_length} tokens: {type(exc).__name__}", f"warm-up failed: {exc}"
        ) from exc
    return Built(Prepared(module, module), labels, example, tokenizer=tokenizer)
