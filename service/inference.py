"""decode -> predict -> explain -> encode. Takes the pool, registry and runner as arguments; no HTTP here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from . import admission
from .admission import Work
from .codecs import images as image_codec
from .codecs.workers import CodecWorkers
from .errors import InvalidInput, InvalidParameter, InvalidTarget, ServiceError
from .explainers import Cost, Explainer, Params, Registry
from .models import LoadedModel, ModelPool
from .models.transforms import Geometry, to_input
from .rendering import prediction, predictions, render
from .runner import EngineRunner, Progress, explain_rows
from .schemas import (
    ExplainResponse,
    ExplainResult,
    ExplainSpec,
    MethodResult,
    MultiExplainResponse,
    MultiExplainResult,
    PredictResponse,
    PredictResult,
    TargetItem,
)
from .settings import Settings

PREDICTED = -1  # the engine's marker for "explain this row's top class"


@dataclass
class Services:
    """What a request needs; built once by the app's lifespan (or by the CLI)."""

    settings: Settings
    pool: ModelPool
    registry: Registry
    runner: EngineRunner
    codecs: CodecWorkers


@dataclass
class Batch:
    images: list[Image.Image | None]  # None where no overlay needs the picture: its pixels are freed at once
    x: Tensor  # (N, C, H, W) on the CPU
    geometry: list[Geometry]


def decode(raw: Sequence[bytes | str], loaded: LoadedModel, settings: Settings, keep: bool = True) -> Batch:
    """Pixels -> the model's input; `keep` keeps the pictures (for overlays)."""
    if len(raw) > settings.max_images:
        raise InvalidInput(f"{len(raw)} images, over the limit of {settings.max_images}", "images")
    pictures, tensors, geometry = [], [], []
    for i, item in enumerate(raw):
        field = f"images.{i}"
        data = image_codec.b64_to_bytes(item, field, settings.max_image_bytes) if isinstance(item, str) else item
        picture = image_codec.decode_image(data, field, settings.max_image_bytes, settings.max_image_pixels)
        tensor, geo = to_input(picture, loaded.spec)
        pictures.append(picture if keep else None)
        tensors.append(tensor)
        geometry.append(geo)
        pixels = picture.width * picture.height
        del picture
        admission.release_freed_memory(pixels)
    return Batch(pictures, torch.stack(tensors), geometry)


def resolve_targets(target: TargetItem | list[TargetItem], n: int, loaded: LoadedModel) -> Tensor:
    items = target if isinstance(target, list) else [target] * n
    if len(items) != n:
        raise InvalidTarget(f"{len(items)} targets for {n} images", "target")
    out = []
    for i, item in enumerate(items):
        field = f"target.{i}" if isinstance(target, list) else "target"
        if item == "predicted":
            out.append(PREDICTED)
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


def check_cost(explainer: Explainer, params: Params, loaded: LoadedModel, settings: Settings) -> Cost:
    cost = explainer.cost(params, loaded.spec.input_size)
    if max(cost.forward, cost.backward) > settings.max_passes_per_image:
        raise InvalidParameter(
            f"{explainer.name} with these parameters needs {cost.forward} forward passes per image; the limit is "
            f"{settings.max_passes_per_image}",
            f"method.{cost.driver}" if cost.driver else "method",
        )
    return cost


def check_top_k(top_k: int, settings: Settings) -> None:
    if top_k > settings.max_top_k:
        raise InvalidParameter(f"top_k is over the limit of {settings.max_top_k}", "top_k")


async def predict(services: Services, model: str, raw: list[bytes | str], top_k: int) -> PredictResponse:
    started = time.perf_counter()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    data, headers = await services.codecs.run(admission.inspect, raw, services.settings)
    spec = loaded.spec
    admission.admit(headers, Work(spec.input_size, spec.channels, passes_per_image=1), services.settings)
    services.runner.check_queue(loaded, len(data))
    batch = await services.codecs.run(decode, data, loaded, services.settings, False)
    decoded = time.perf_counter()
    logits = await services.runner.predict(loaded, batch.x)
    done = time.perf_counter()
    results = [PredictResult(predictions=p) for p in predictions(logits, top_k, loaded.labels)]
    return PredictResponse(model=model, results=results, timing_ms=timings(started, decoded, done))


def parse_methods(services: Services, spec: ExplainSpec, loaded: LoadedModel) -> list[tuple[Explainer, Params, Cost]]:
    """Each method of the request, validated against the model; errors name the method's place."""
    out = []
    for i, method in enumerate(spec.method_specs()):
        prefix = "method" if spec.methods is None else f"methods.{i}"
        try:
            explainer, params = services.registry.parse(method)
            cost = check_cost(explainer, params, loaded, services.settings)
            layer = getattr(params, "layer", None)
            if explainer.capabilities.uses_layer and layer is not None and layer not in dict(loaded.layers):
                raise InvalidParameter(
                    f"layer {layer!r} is not one of the model's CAM layers (see GET /v1/models/{loaded.spec.name})",
                    "method.layer",
                )
        except ServiceError as exc:
            if exc.field is not None and exc.field.startswith("method"):
                exc.field = prefix + exc.field.removeprefix("method")
            raise
        out.append((explainer, params, cost))
    return out


def echo(explainer: Explainer, params: Params, loaded: LoadedModel | None = None) -> dict:
    """The method with every parameter; with `loaded`, a CAM method's layer as resolved for this model."""
    fields = {"name": explainer.name, **params.model_dump()}
    if loaded is not None and explainer.capabilities.uses_layer and fields.get("layer") is None:
        fields["layer"] = loaded.default_layer
    return fields


async def explain(
    services: Services, model: str, raw: list[bytes | str], spec: ExplainSpec, progress: Progress | None = None
) -> ExplainResponse | MultiExplainResponse:
    started = time.perf_counter()
    check_top_k(spec.top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    parsed = parse_methods(services, spec, loaded)
    data, headers = await services.codecs.run(admission.inspect, raw, services.settings)
    targets = resolve_targets(spec.target, len(raw), loaded)
    admission.admit(headers, Work.of([(e, c) for e, _, c in parsed], loaded.spec, spec.output), services.settings)
    methods = [(e, p) for e, p, _ in parsed]
    # Before decoding, so that a refusal costs almost nothing.
    services.runner.check_queue(loaded, explain_rows(loaded, methods, len(data)))
    batch = await services.codecs.run(decode, data, loaded, services.settings, spec.output.overlay)
    del data
    decoded = time.perf_counter()
    results = await services.runner.explain(loaded, methods, batch.x, targets, spec.objective, progress)
    modelled = time.perf_counter()
    explainers = [e for e, _ in methods]
    rendered = await services.codecs.run(render, batch.images, batch.geometry, results, explainers, spec.output)
    first = results[0]
    top = predictions(first.logits, spec.top_k, loaded.labels)
    probs = first.logits.float().softmax(dim=1)
    shared = [
        {"predictions": top[i], "target": prediction(first.logits[i], probs[i], int(first.targets[i]), loaded.labels)}
        for i in range(len(batch.geometry))
    ]
    timing = timings(started, decoded, modelled)
    if spec.methods is None:
        explainer, params = methods[0]
        singles = [ExplainResult(**shared[i], **maps[0]) for i, maps in enumerate(rendered)]
        return ExplainResponse(
            model=model, method=echo(explainer, params), objective=spec.objective, results=singles, timing_ms=timing
        )
    echoes = [echo(e, p, loaded) for e, p in methods]
    multi = [
        MultiExplainResult(
            **shared[i], explanations=[MethodResult(method=m, **r) for m, r in zip(echoes, maps, strict=True)]
        )
        for i, maps in enumerate(rendered)
    ]
    return MultiExplainResponse(model=model, methods=echoes, objective=spec.objective, results=multi, timing_ms=timing)


def timings(started: float, decoded: float, modelled: float) -> dict[str, float]:
    now = time.perf_counter()
    ms = 1000.0
    return {
        "decode": (decoded - started) * ms,
        "model": (modelled - decoded) * ms,
        "encode": (now - modelled) * ms,
        "total": (now - started) * ms,
    }
