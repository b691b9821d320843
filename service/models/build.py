"""Builds what the pool keeps of a model, per kind: the prepared module, labels, layers and an example row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import detection, loader
from .attention import AttentionInfo, probe_attention
from .layers import LayerTable, cam_layers, relu_modules_only
from .prepare import Prepared, PrepareOptions, prepare
from .spec import ModelSpec


@dataclass
class Built:
    prepared: Prepared
    labels: list[str] | None
    example: Tensor  # one row, for measuring a row's memory
    table: LayerTable = field(default_factory=LayerTable)  # CAM layers and their layouts (images)
    tokenizer: Any = None
    relu_issue: str | None = "not an image model"  # why guided backprop cannot run on it; None: it can
    attention: AttentionInfo | str = "not an image model"  # what the attention methods read, or why not


def image(spec: ModelSpec, device: torch.device, options: PrepareOptions) -> Built:
    labels = loader.read_labels(spec)
    module = loader.load(spec).to(device)
    example = torch.zeros((1, spec.channels, *spec.input_size), device=device)
    try:
        table = cam_layers(module, example)  # also the warm-up pass
    except Exception as exc:  # the model cannot run on its declared input: a configuration error
        raise loader.ModelLoadError(
            f"warm-up forward failed on a {tuple(example.shape)} input: {type(exc).__name__}",
            f"warm-up forward failed: {exc}",
        ) from exc
    probe = torch.randn((2, *example.shape[1:]), generator=torch.Generator().manual_seed(0)).to(device)
    prepared = prepare(module, probe, options)
    if spec.target_layer is not None:
        if spec.target_layer not in table.layouts:
            why = table.refused.get(spec.target_layer, "it outputs no feature maps")
            raise loader.ModelLoadError(f"target_layer {spec.target_layer!r} cannot be a CAM layer: {why}")
        table.default = spec.target_layer
    attention = probe_attention(module, example)
    return Built(prepared, labels, example, table, relu_issue=relu_modules_only(module), attention=attention)


def detector(spec: ModelSpec, device: torch.device) -> Built:
    """A detector wrapped to give one tensor per pass (detection.py); not prepared (folding a detector's
    BatchNorms and compiling it are not checked here) and not probed for attention."""
    labels = loader.read_labels(spec)
    module = detection.Detector(loader.load(spec)).eval().to(device)
    example = torch.zeros((1, spec.channels, *spec.input_size), device=device)
    try:
        table = detection.detection_layers(module, example)  # also the warm-up pass
    except Exception as exc:  # the model cannot run on its declared input, or breaks the output contract
        raise loader.ModelLoadError(
            f"warm-up forward failed on a {tuple(example.shape)} input: {type(exc).__name__}",
            f"warm-up forward failed: {exc}",
        ) from exc
    if spec.target_layer is not None:
        if spec.target_layer not in table.layouts:
            why = table.refused.get(spec.target_layer, "it outputs no feature maps")
            raise loader.ModelLoadError(f"target_layer {spec.target_layer!r} cannot be a CAM layer: {why}")
        table.default = spec.target_layer
    return Built(Prepared(module, module), labels, example, table, attention="not an image classifier")


def text(spec: ModelSpec, device: torch.device) -> Built:
    from . import text as text_models

    model, tokenizer = text_models.load(spec)
    module = text_models.TextClassifier(model.to(device), text_models.embedding_layer_name(model, spec))
    labels = loader.read_labels(spec) if spec.labels is not None else text_models.config_labels(model)
    # The longest text a request may send: its row is the memory a row can take.
    encoded = tokenizer("x", padding="max_length", max_length=spec.max_length, truncation=True, return_tensors="pt")
    example = warmed_up(module, encoded["input_ids"].to(device), encoded["attention_mask"].to(device), spec)
    return Built(Prepared(module, module), labels, example, tokenizer=tokenizer)


def warmed_up(module, ids: Tensor, mask: Tensor, spec: ModelSpec) -> Tensor:
    """A text model's row of these tokens, after one forward of it (the warm-up)."""
    from . import text as text_models

    try:
        example = text_models.rows_of(module.embed(ids, mask).clone(), mask, ids)
        with torch.inference_mode():
            module(example)
    except Exception as exc:  # the model and its tokenizer do not fit together: a configuration error
        raise loader.ModelLoadError(
            f"warm-up forward failed on {spec.max_length} tokens: {type(exc).__name__}", f"warm-up failed: {exc}"
        ) from exc
    return example


def causal_lm(spec: ModelSpec, device: torch.device) -> Built:
    """A causal LM wrapped to give log-probabilities per pass (causal_lm.py); its row memory is measured on a
    row of max_length tokens, the longest prompt and answer a request may send."""
    from . import causal_lm as lm
    from . import text as text_models

    model, tokenizer = lm.load(spec)
    module = lm.CausalLM(model.to(device), text_models.embedding_layer_name(model, spec), spec.max_length)
    ids = torch.full((1, spec.max_length), lm.pad_id(tokenizer), dtype=torch.long, device=device)
    example = warmed_up(module, ids, torch.ones_like(ids), spec)
    return Built(Prepared(module, module), None, example, tokenizer=tokenizer)
