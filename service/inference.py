"""decode -> predict -> explain -> encode. Takes the pool, registry and runner as arguments; no HTTP here."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .codecs import images as image_codec
from .codecs import saliency as saliency_codec
from .errors import InvalidInput, InvalidParameter, InvalidTarget
from .explainers import Explainer, Params, Registry
from .explainers.postprocess import normalize, reduce_channels
from .models import LoadedModel, ModelPool
from .models.transforms import Geometry, to_input
from .runner import EngineRunner
from .schemas import (
    ExplainResponse,
    ExplainResult,
    ExplainSpec,
    Prediction,
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


@dataclass
class Batch:
    images: list[Image.Image]
    x: Tensor  # (N, C, H, W) on the CPU
    geometry: list[Geometry]


def decode(raw: list[bytes | str], loaded: LoadedModel, settings: Settings) -> Batch:
    if len(raw) > settings.max_images:
        raise InvalidInput(f"{len(raw)} images, over the limit of {settings.max_images}", "images")
    pictures, tensors, geometry = [], [], []
    for i, item in enumerate(raw):
        field = f"images.{i}"
        data = image_codec.b64_to_bytes(item, field, settings.max_image_bytes) if isinstance(item, str) else item
        picture = image_codec.decode_image(data, field, settings.max_image_bytes, settings.max_image_pixels)
        tensor, geo = to_input(picture, loaded.spec)
        pictures.append(picture)
        tensors.append(tensor)
        geometry.append(geo)
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


def check_cost(explainer: Explainer, params: Params, loaded: LoadedModel, settings: Settings) -> None:
    cost = explainer.cost(params, loaded.spec.input_size)
    if max(cost.forward, cost.backward) > settings.max_passes_per_image:
        raise InvalidParameter(
            f"{explainer.name} with these parameters needs {cost.forward} forward passes per image; the limit is "
            f"{settings.max_passes_per_image}",
            f"method.{cost.driver}" if cost.driver else "method",
        )


def predictions(logits: Tensor, top_k: int, labels: list[str] | None) -> list[list[Prediction]]:
    probs = logits.float().softmax(dim=1)
    top = probs.topk(min(top_k, logits.shape[1]), dim=1)
    return [
        [prediction(row_logits, row_probs, int(i), labels) for i in idx]
        for row_logits, row_probs, idx in zip(logits, probs, top.indices, strict=True)
    ]


def prediction(logits: Tensor, probs: Tensor, index: int, labels: list[str] | None) -> Prediction:
    label = labels[index] if labels else None
    return Prediction(index=index, label=label, probability=float(probs[index]), logit=float(logits[index]))


def check_top_k(top_k: int, settings: Settings) -> None:
    if top_k > settings.max_top_k:
        raise InvalidParameter(f"top_k is over the limit of {settings.max_top_k}", "top_k")


async def predict(services: Services, model: str, raw: list[bytes | str], top_k: int) -> PredictResponse:
    started = time.perf_counter()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    batch = await asyncio.to_thread(decode, raw, loaded, services.settings)
    decoded = time.perf_counter()
    logits = await services.runner.predict(loaded, batch.x)
    done = time.perf_counter()
    results = [PredictResult(predictions=p) for p in predictions(logits, top_k, loaded.labels)]
    return PredictResponse(model=model, results=results, timing_ms=timings(started, decoded, done))


async def explain(services: Services, model: str, raw: list[bytes | str], spec: ExplainSpec) -> ExplainResponse:
    started = time.perf_counter()
    explainer, params = services.registry.parse(spec.method)
    check_top_k(spec.top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    check_cost(explainer, params, loaded, services.settings)
    if explainer.capabilities.uses_layer and getattr(params, "layer", None) is not None:
        if params.layer not in {name for name, _ in loaded.layers}:
            raise InvalidParameter(
                f"layer {params.layer!r} is not one of the model's CAM layers (see GET /v1/models/{model})",
                "method.layer",
            )
    batch = await asyncio.to_thread(decode, raw, loaded, services.settings)
    targets = resolve_targets(spec.target, len(raw), loaded)
    decoded = time.perf_counter()
    result = await services.runner.explain(loaded, explainer, params, batch.x, targets, spec.objective)
    modelled = time.perf_counter()
    results = await asyncio.to_thread(encode, batch, result, loaded, spec, explainer)
    method = {"name": explainer.name, **params.model_dump()}
    return ExplainResponse(
        model=model,
        method=method,
        objective=spec.objective,
        results=results,
        timing_ms=timings(started, decoded, modelled),
    )


def encode(batch: Batch, result, loaded: LoadedModel, spec: ExplainSpec, explainer: Explainer) -> list[ExplainResult]:
    out = spec.output
    reduced = reduce_channels(result.attributions.float(), out.reduce)
    maps = normalize(reduced, out.normalize)
    signed = out.normalize == "percentile" or (
        out.normalize == "none" and out.reduce in ("sum", "none") and explainer.capabilities.output == "pixel"
    )
    top = predictions(result.logits, spec.top_k, loaded.labels)
    probs = result.logits.float().softmax(dim=1)
    results = []
    for i, picture in enumerate(batch.images):
        at_original = None
        if out.size == "original" or out.overlay:
            # Normalize after resizing, so that the map's own extremes at the original size are 0 and 1.
            resized = saliency_codec.to_original_size(reduced[i], batch.geometry[i])
            at_original = normalize(resized[None], out.normalize)[0].numpy()
        array = at_original if out.size == "original" else maps[i].numpy()
        target = int(result.targets[i])
        results.append(
            ExplainResult(
                predictions=top[i],
                target=prediction(result.logits[i], probs[i], target, loaded.labels),
                saliency=saliency_codec.encode_array(array, out.saliency, signed),
                heatmap_png=b64(saliency_codec.heatmap_png(flat(array), out.colormap, signed)) if out.heatmap else None,
                overlay_png=b64(saliency_codec.overlay_png(picture, flat(at_original), out.colormap, out.alpha, signed))
                if out.overlay
                else None,
                diagnostics={k: v[i].item() for k, v in result.diagnostics.items()},
            )
        )
    return results


def flat(array: np.ndarray) -> np.ndarray:
    """A map to draw: (C, H, W) maps (reduce="none") show their largest magnitude per pixel."""
    return np.abs(array).max(axis=0) if array.ndim == 3 else array


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def timings(started: float, decoded: float, modelled: float) -> dict[str, float]:
    now = time.perf_counter()
    ms = 1000.0
    return {
        "decode": (decoded - started) * ms,
        "model": (modelled - decoded) * ms,
        "encode": (now - modelled) * ms,
        "total": (now - started) * ms,
    }
