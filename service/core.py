"""The protocol-neutral core: lookups, limits, targets, the codec and the engine call -> domain results.

It imports neither FastAPI nor the API schemas: v1 (service/api) turns these results into its JSON, and a
second protocol can sit beside it. Which modality a model has is its codec's business (service/codecs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .codecs import Codec, codec_for
from .codecs.options import OutputOptions
from .codecs.workers import CodecWorkers
from .errors import InvalidInput, InvalidParameter, InvalidTarget, PayloadTooLarge, within_field
from .explainers import Cost, Explainer, Objective, Params, Registry
from .explainers.faithfulness import EvaluateSpec
from .explainers.plan import TOP
from .models import LoadedModel, ModelPool
from .runner import EngineRunner, Evaluation, Progress, evaluation_rows, explain_rows, method_cost
from .settings import Settings

Target = int | str  # a class index, a label, or "predicted"


@dataclass
class Services:
    """What a request needs; built once by the app's lifespan (or by the CLI)."""

    settings: Settings
    pool: ModelPool
    registry: Registry
    runner: EngineRunner
    codecs: CodecWorkers


@dataclass(frozen=True)
class Ranked:
    """One class of one input: its index, label, probability and logit."""

    index: int
    label: str | None
    probability: float
    logit: float


@dataclass
class Explained:
    model: str
    methods: list[dict[str, Any]]  # each method with every parameter (and a CAM method's resolved layer)
    objective: Objective
    predictions: list[list[Ranked]]  # per input, the top k
    targets: list[Ranked]  # per input, the class explained
    maps: list[list[dict[str, Any]]]  # per input, per method: the codec's map fields
    timing_ms: dict[str, float]
    logits: Tensor | None = None  # (N, K): every class, for protocols that return whole tensors (v2)


@dataclass
class Predicted:
    model: str
    predictions: list[list[Ranked]]
    timing_ms: dict[str, float]
    logits: Tensor | None = None  # (N, K)


def ranked(logits: Tensor, top_k: int, labels: list[str] | None) -> list[list[Ranked]]:
    probs = logits.float().softmax(dim=1)
    top = probs.topk(min(top_k, logits.shape[1]), dim=1)
    return [
        [rank(row_logits, row_probs, int(i), labels) for i in idx]
        for row_logits, row_probs, idx in zip(logits, probs, top.indices, strict=True)
    ]


def rank(logits: Tensor, probs: Tensor, index: int, labels: list[str] | None) -> Ranked:
    return Ranked(index, labels[index] if labels else None, float(probs[index]), float(logits[index]))


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
    layer = getattr(params, "layer", None)
    if explainer.capabilities.uses_layer and layer is not None and layer not in dict(loaded.layers):
        raise InvalidParameter(
            f"layer {layer!r} is not one of the model's CAM layers (see GET /v1/models/{loaded.spec.name})",
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


def parse_methods(
    services: Services, methods: list[Any], loaded: LoadedModel, several: bool
) -> list[tuple[Explainer, Params, Cost]]:
    """Each method of the request, validated against the model; errors name the method's place."""
    out = []
    for i, method in enumerate(methods):
        with within_field("method", f"methods.{i}" if several else "method"):
            explainer, params = services.registry.parse(method, loaded.kind)
            out.append((explainer, params, check_method(explainer, params, loaded, services.settings)))
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


async def predict(services: Services, model: str, field: str, inputs: Sequence[Any], top_k: int) -> Predicted:
    started = time.perf_counter()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    codec = codec_of(loaded, field)
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, [], None)
    services.runner.check_queue(loaded, len(inputs))
    batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
    decoded = time.perf_counter()
    logits = await services.runner.predict(loaded, batch.x)
    done = time.perf_counter()
    return Predicted(model, ranked(logits, top_k, loaded.labels), timings(started, decoded, done), logits)


async def explain(
    services: Services,
    model: str,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    *,
    several: bool = False,
    target: Target | list[Target] = "predicted",
    objective: Objective = "logit",
    top_k: int = 5,
    output: OutputOptions | None = None,
    evaluate: EvaluateSpec | None = None,
    progress: Progress | None = None,
) -> Explained:
    """`field` names the request's inputs ("images", "texts"); `several`: the request named a list of methods
    (errors then say `methods.i`)."""
    started = time.perf_counter()
    output = output or OutputOptions()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    codec = codec_of(loaded, field)
    parsed = parse_methods(services, methods, loaded, several)
    targets = resolve_targets(target, len(inputs), loaded)
    costs = [(e, c) for e, _, c in parsed]
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, costs, output)
    chosen = [(e, p) for e, p, _ in parsed]
    evaluation = check_evaluate(evaluate, codec, [e for e, _ in chosen], services.settings, output, len(inputs))
    # Before decoding, so that a refusal costs almost nothing.
    rows = explain_rows(loaded, chosen, len(inputs)) + evaluation_rows(evaluation, chosen, len(inputs))
    services.runner.check_queue(loaded, rows)
    batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, output)
    del admitted
    decoded = time.perf_counter()
    results = await services.runner.explain(loaded, chosen, batch.x, targets, objective, progress, evaluation)
    modelled = time.perf_counter()
    explainers = [e for e, _ in chosen]
    maps = await services.codecs.run(codec.render, batch, results, explainers, output)
    first = results[0]
    probs = first.logits.float().softmax(dim=1)
    explained = [rank(first.logits[i], probs[i], int(first.targets[i]), loaded.labels) for i in range(len(maps))]
    return Explained(
        model,
        [echo(e, p, loaded) for e, p in chosen],
        objective,
        ranked(first.logits, top_k, loaded.labels),
        explained,
        maps,
        timings(started, decoded, modelled),
        first.logits,
    )


def timings(started: float, decoded: float, modelled: float) -> dict[str, float]:
    now = time.perf_counter()
    ms = 1000.0
    return {
        "decode": (decoded - started) * ms,
        "model": (modelled - decoded) * ms,
        "encode": (now - modelled) * ms,
        "total": (now - started) * ms,
    }
