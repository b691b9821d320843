"""predict and explain for detection models: the boxes, then one map per box and method.

A detector's explanation takes two submissions to the device under one reservation: a prediction pass (the
detections, which are the default targets and are reported for every image), then the methods' plans over
the target boxes (explainers/detectors.py). Rows are counted before anything is decoded with the most boxes
an image can have (`max_detections`, or the boxes the client gave), so admission never undercounts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..codecs.image.detections import DetectionCodec, combined_overlay
from ..codecs.options import OutputOptions
from ..engine.plan import Plan, clean_rows
from ..engine.runner import Progress
from ..explainers import ExplainContext, PixelSpace
from ..explainers.detectors import box_plan
from ..explainers.faithfulness import EvaluateSpec
from ..models import LoadedModel
from ..models.detection import no_box
from . import plans
from .boxes import box_table, parse_boxes
from .checks import check_evaluate, codec_of, echo, parse_methods
from .results import timings
from .rows import RowCount, check_request, method_cost
from .services import Services


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the original image's pixels
    index: int
    label: str | None
    score: float


@dataclass
class Detected:
    model: str
    detections: list[list[Detection]]
    timing_ms: dict[str, float]
    raw: Tensor  # (N, D, 6) every candidate in input pixels: [x0, y0, x1, y1, score, label]


@dataclass
class DetectionsExplained:
    model: str
    methods: list[dict[str, Any]]
    detections: list[list[Detection]]  # per image, the boxes explained (the detections, or the client's)
    maps: list[list[list[dict[str, Any]]]]  # per image, per box, per method: the codec's map fields
    combined: list[str | None]  # per image, the overlay of every box (base64 PNG) when overlays were asked
    timing_ms: dict[str, float]


def kept(raw: Tensor, loaded: LoadedModel) -> list[Tensor]:
    """Per image, its reported detections (K, 6): score >= min_score, the best max_detections."""
    spec = loaded.spec
    return [rows[rows[:, 4] >= spec.min_score][: spec.max_detections] for rows in raw]


def reported(rows: Tensor, geometry, loaded: LoadedModel, size: tuple[int, int]) -> list[Detection]:
    boxes = geometry.to_original(rows[:, :4].double(), size)
    labels = loaded.labels
    out = []
    for box, row in zip(boxes.tolist(), rows.tolist(), strict=True):
        index = int(row[5])
        label = labels[index] if labels is not None and 0 <= index < len(labels) else None
        out.append(Detection((box[0], box[1], box[2], box[3]), index, label, float(row[4])))
    return out


def predict_plan(x: Tensor) -> Plan:
    out = yield from clean_rows(x, no_box(len(x), x.device))
    return out.logits.float().cpu()


async def detections(services: Services, loaded: LoadedModel, x: Tensor, seat) -> Tensor:
    def build() -> list[Plan]:
        return [predict_plan(x.to(loaded.device))]

    (raw,) = await services.runner.submit(loaded, loaded.module, build, "affinity", len(x), None, seat)
    return raw  # type: ignore[return-value]


async def predict(services: Services, loaded: LoadedModel, field: str, inputs: Sequence[Any]) -> Detected:
    started = time.perf_counter()
    codec = codec_of(loaded, field)
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, [], None)
    check_request(RowCount(1, len(inputs)), services.settings, codec.field)
    with services.runner.reserved(loaded, len(inputs), len(inputs)) as seat:
        batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
        decoded = time.perf_counter()
        raw = await detections(services, loaded, batch.x, seat)
    size = loaded.spec.input_size
    pairs = zip(kept(raw, loaded), batch.items, strict=True)
    found = [reported(rows, where, loaded, size) for rows, (_, where) in pairs]
    return Detected(loaded.spec.name, found, timings(started, decoded, time.perf_counter()), raw)


async def explain(
    services: Services,
    loaded: LoadedModel,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    target: Any,
    output: OutputOptions,
    progress: Progress | None,
    several: bool,
    evaluate: EvaluateSpec | None = None,
) -> DetectionsExplained:
    started = time.perf_counter()
    codec = codec_of(loaded, field)
    assert isinstance(codec, DetectionCodec)
    chosen = parse_methods(services, methods, loaded, several)
    given = parse_boxes(target, len(inputs), loaded)
    explainers = [e for e, _ in chosen]
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, explainers, output)
    boxes = most_boxes(loaded, given)
    # Each box's curves are its own: the maps to evaluate are boxes x images per method.
    evaluation = check_evaluate(evaluate, codec, explainers, services.settings, output, len(inputs) * boxes)
    count = count_rows(loaded, chosen, len(inputs), boxes, evaluate)
    check_request(count, services.settings, codec.field)
    with services.runner.reserved(loaded, count.total, len(inputs)) as seat:
        batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, output)
        del admitted
        decoded = time.perf_counter()
        raw = await detections(services, loaded, batch.x, seat)
        geometry = [where for _, where in batch.items]
        table = targets_table(raw, given, geometry, loaded)
        results = await explain_boxes(services, loaded, chosen, batch.x, table, progress, seat, evaluation)
    modelled = time.perf_counter()
    size = loaded.spec.input_size
    explained = [boxes_of(table[i], raw[i], where, loaded, size) for i, where in enumerate(geometry)]
    if given is not None:  # the client's boxes as it sent them (not through the input's float32 pixels)
        explained = [
            [replace(d, box=(box[0], box[1], box[2], box[3])) for d, (box, _) in zip(image, boxes, strict=True)]
            for image, boxes in zip(explained, given, strict=True)
        ]
    drawn = [[(d.box, d.index, caption(d)) for d in found_i] for found_i in explained]
    pictures = [picture for picture, _ in batch.items]
    maps = await services.codecs.run(codec.render_boxes, batch, results, explainers, output, drawn)
    combined: list[str | None] = [None] * len(explained)
    if output.overlay:
        first = results[0].attributions
        for i, picture in enumerate(pictures):
            combined[i] = await services.codecs.run(
                combined_overlay, picture, first[i, : len(drawn[i])].numpy(), geometry[i], drawn[i], output
            )
    return DetectionsExplained(
        loaded.spec.name,
        [echo(e, p, loaded) for e, p in chosen],
        explained,
        maps,
        combined,
        timings(started, decoded, modelled),
    )


def most_boxes(loaded: LoadedModel, given: list | None) -> int:
    """The most boxes an image of the request can have: the client's, or max_detections."""
    return max((len(b) for b in given), default=0) if given is not None else loaded.spec.max_detections


def count_rows(
    loaded: LoadedModel, chosen: list, inputs: int, boxes: int, evaluate: EvaluateSpec | None = None
) -> RowCount:
    """The request's rows: the prediction pass, then each method's rows per box (or per image)."""
    rows = 1 + sum(method_cost(loaded, e, p).forward * (1 if per_image(e) else boxes) for e, p in chosen)
    rows += evaluate.rows_per_image() * len(chosen) * boxes if evaluate is not None else 0
    return RowCount(rows, inputs, next((method_cost(loaded, e, p).driver for e, p in chosen), None))


def targets_table(raw: Tensor, given: list | None, geometry: list, loaded: LoadedModel) -> Tensor:
    """(N, B, 5) target boxes in input pixels: each image's kept detections, or the client's boxes."""
    if given is not None:
        return box_table(given, geometry, loaded)
    reported_rows = kept(raw, loaded)
    table = no_box(len(reported_rows), torch.device("cpu"), max([len(f) for f in reported_rows] + [0]))
    for i, image_rows in enumerate(reported_rows):
        table[i, : len(image_rows)] = torch.cat([image_rows[:, :4], image_rows[:, 5:6]], dim=1)
    return table


def boxes_of(table: Tensor, raw: Tensor, geometry, loaded: LoadedModel, size: tuple[int, int]) -> list[Detection]:
    """The boxes explained in one image, each with its affinity to the clean image's detections."""
    valid = table[table[:, 4] >= 0]
    if not len(valid):
        return []
    from ..models.detection import affinity

    scores = affinity(raw[None], valid[None])[0]
    rows = torch.cat([valid[:, :4], scores[:, None], valid[:, 4:5]], dim=1)
    return reported(rows, geometry, loaded, size)


def per_image(explainer) -> bool:
    """Whether the method's rows are per image (all its boxes at once), not per box."""
    return explainer.capabilities.boxes_per_row


def caption(detection: Detection) -> str:
    name = detection.label if detection.label is not None else str(detection.index)
    return f"{name} {detection.score:.2f}"


async def explain_boxes(
    services, loaded, chosen, x: Tensor, table: Tensor, progress, seat, evaluation=None, module=None
) -> list:
    """Each method's maps of the table's boxes, on the served detector or on `module` (a randomized copy)."""
    spec = loaded.spec
    ctx = ExplainContext(
        pixel_space=PixelSpace(spec.mean, spec.std),
        layer=loaded.default_layer,
        layouts=loaded.layouts,
        refused_layers=loaded.refused_layers,
        attention=loaded.attention_issue,
    )
    module = loaded.module if module is None else module
    boxes = int((table[..., 4] >= 0).sum())
    rows = sum(method_cost(loaded, e, p).forward * (len(x) if per_image(e) else boxes) for e, p in chosen)
    rows += evaluation[0].rows_per_image() * len(chosen) * boxes if evaluation is not None else 0

    def build() -> list[Plan]:
        xs, targets = x.to(loaded.device), table.to(loaded.device)
        how = [None] * len(chosen) if evaluation is None else [(evaluation[0], r) for r in evaluation[1]]
        pairs = zip(chosen, how, strict=True)
        return [plans.to_cpu(box_plan(e, module, xs, targets, p, ctx, h)) for (e, p), h in pairs]

    return await services.runner.submit(loaded, module, build, "affinity", max(1, rows), progress, seat)
