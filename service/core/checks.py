"""Every check of a request against its model and the limits, before anything is decoded."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..codecs import Codec, codec_for
from ..codecs.options import OutputOptions
from ..engine.plan import TOP
from ..errors import InvalidInput, InvalidParameter, InvalidTarget, PayloadTooLarge, within_field
from ..explainers import Cost, Explainer, Params
from ..explainers.faithfulness import EvaluateSpec
from ..models import LoadedModel
from ..settings import Settings
from .plans import Evaluation
from .rows import Method, method_cost
from .services import Services

Target = int | str  # a class index, a label, or "predicted"


def resolve_targets(target: Target | list[Target], n: int, loaded: LoadedModel) -> Tensor:
    """The class index per input, TOP for "predicted"; every target check lives here."""
    items = target if isinstance(target, list) else [target] * n
    if len(items) != n:
        raise InvalidTarget(f"{len(items)} targets for {n} inputs", "target")
    out = []
    for i, item in enumerate(items):
        field = f"target.{i}" if isinstance(target, list) else "target"
        if item == "predicted":
            out.append(TOP)
        elif isinstance(item, int):
            if item >= loaded.spec.num_classes:
                raise InvalidTarget(f"class {item} out of range [0, {loaded.spec.num_classes})", field)
            out.append(item)
        elif loaded.labels is None:
            raise InvalidTarget(f"model {loaded.spec.name!r} has no labels; give a class index", field)
        elif item not in loaded.labels:
            raise InvalidTarget(f"unknown label {item!r}", field)
        else:
            out.append(loaded.labels.index(item))
    return torch.tensor(out, dtype=torch.long)


def check_method(explainer: Explainer, params: Params, loaded: LoadedModel, settings: Settings) -> Cost:
    """The method against the model: its modality, its layer, and its passes per input under the limit."""
    kind = loaded.spec.kind
    if kind not in explainer.capabilities.modalities:
        raise InvalidParameter(
            f"{explainer.name} does not explain {kind} models; it supports: "
            f"{', '.join(explainer.capabilities.modalities)} (see GET /v1/methods)",
            "method.name",
        )
    if explainer.capabilities.guided_relu and loaded.relu_issue is not None:
        raise InvalidParameter(
            f"{explainer.name} cannot explain model {loaded.spec.name!r}: {loaded.relu_issue}", "method.name"
        )
    if explainer.capabilities.reads_attention and loaded.attention is None:
        raise InvalidParameter(
            f"{explainer.name} cannot explain model {loaded.spec.name!r}: {loaded.attention_issue}", "method.name"
        )
    layer = getattr(params, "layer", None)
    if explainer.capabilities.uses_layer and layer is not None and layer not in dict(loaded.layers):
        why = loaded.refused_layers.get(layer)
        raise InvalidParameter(
            f"layer {layer!r} cannot be a CAM layer: {why}"
            if why
            else f"layer {layer!r} is not one of the model's CAM layers (see GET /v1/models/{loaded.spec.name})",
            "method.layer",
        )
    cost = method_cost(loaded, explainer, params)
    if max(cost.forward, cost.backward) > settings.max_passes_per_image:
        raise InvalidParameter(
            f"{explainer.name} with these parameters needs {cost.forward} forward passes per input; the limit is "
            f"{settings.max_passes_per_image}",
            f"method.{cost.driver}" if cost.driver else "method",
        )
    return cost


def parse_methods(services: Services, methods: list[Any], loaded: LoadedModel, several: bool) -> list[Method]:
    """Each method of the request, validated against the model; errors name the method's place."""
    out = []
    for i, method in enumerate(methods):
        with within_field("method", f"methods.{i}" if several else "method"):
            explainer, params = services.registry.parse(method, loaded.kind)
            check_method(explainer, params, loaded, services.settings)
            out.append((explainer, params))
    return out


def check_evaluate(
    evaluate: EvaluateSpec | None,
    codec: Codec,
    methods: list[Explainer],
    settings: Settings,
    output: OutputOptions,
    inputs: int,
) -> Evaluation | None:
    """The faithfulness metrics asked for, with the reductions that rank each method's map (the client's, or
    the codec's default), within the limits."""
    if evaluate is None:
        return None
    maps = len(methods) * inputs
    if evaluate.rows_per_image() > settings.max_passes_per_image:
        raise InvalidParameter(
            f"evaluate needs {evaluate.rows_per_image()} forward passes per image and method; the limit is "
            f"{settings.max_passes_per_image}",
            "evaluate.steps",
        )
    if evaluate.rows_per_image() * maps > settings.max_passes_per_request:
        raise PayloadTooLarge(
            f"evaluate needs {evaluate.rows_per_image() * maps} forward passes; the limit is "
            f"{settings.max_passes_per_request} per request",
            "evaluate.steps",
        )
    return evaluate, [output.reduce or codec.reduction(e) for e in methods]


def check_top_k(top_k: int, settings: Settings) -> None:
    if top_k > settings.max_top_k:
        raise InvalidParameter(f"top_k is over the limit of {settings.max_top_k}", "top_k")


def echo(explainer: Explainer, params: Params, loaded: LoadedModel | None = None) -> dict:
    """The method with every parameter; with `loaded`, a CAM method's layer as resolved for this model."""
    fields = {"name": explainer.name, **params.model_dump()}
    if loaded is not None and explainer.capabilities.uses_layer and fields.get("layer") is None:
        fields["layer"] = loaded.default_layer
    return fields


def codec_of(loaded: LoadedModel, field: str) -> Codec:
    """The model's codec; the request must carry the inputs that codec reads."""
    codec = codec_for(loaded.spec.kind, field)
    if field != codec.field:
        raise InvalidInput(
            f"model {loaded.spec.name!r} is {loaded.spec.kind} model: send `{codec.field}`, not `{field}`", field
        )
    return codec
