"""The sanity endpoint for detectors: each box's maps on the served detector, then on randomized copies.

The boxes are fixed once, by the served model's prediction pass (or given by the client), and every set of
maps explains the same boxes: on a randomized copy a box is scored by its affinity to whatever that copy
detects (models/detection.py), so a copy that finds nothing there gives a blank map, which resembles nothing.
The cascade randomizes the detector's parts from the output down (randomize.detector_blocks: the heads'
parts, the FPN, the backbone's stages). The similarity of a step is the mean over every (image, box).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from ...codecs.image import ImageCodec
from ...engine.runner import Progress
from ...errors import InvalidParameter, InvalidTarget
from ...explainers import Explanation
from ...explainers.postprocess import reduce_channels
from ...models import LoadedModel
from .. import detect
from ..boxes import parse_boxes
from ..checks import codec_of, echo, parse_methods
from ..rows import check_request
from ..services import Services
from . import randomize
from .similarity import mean_similarity
from .verdict import verdict


async def check(
    services: Services,
    loaded: LoadedModel,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    *,
    test: str,
    reference_model: str | None,
    target: Any,
    seed: int,
    progress: Progress | None,
):
    from .check import Checked, MethodCheck, cumulative

    started = time.perf_counter()
    if test != "model_randomization" or reference_model is not None:
        why = "detectors are checked by model_randomization (there is no shuffled-labels reference detector)"
        raise InvalidParameter(why, "test" if test != "model_randomization" else "reference_model")
    codec = codec_of(loaded, field)
    assert isinstance(codec, ImageCodec)
    chosen = parse_methods(services, methods, loaded, several=True)
    given = parse_boxes(target, len(inputs), loaded)
    steps = cumulative([name for name, _ in randomize.blocks(loaded.module)])
    count = detect.count_rows(loaded, chosen, len(inputs), detect.most_boxes(loaded, given))
    check_request(count, services.settings, codec.field, sets=1 + len(steps))
    explainers = [e for e, _ in chosen]
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, explainers, None)
    with services.runner.reserved(loaded, count.total * (1 + len(steps)), len(inputs)) as seat:
        batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
        del admitted
        raw = await detect.detections(services, loaded, batch.x, seat)
        geometry = [where for _, where in batch.items]
        table = detect.targets_table(raw, given, geometry, loaded)
        if not bool((table[..., 4] >= 0).any()):
            raise InvalidTarget(
                f"no image has a detection scoring min_score {loaded.spec.min_score} or more to check; "
                'send target boxes ([{"box": [x0, y0, x1, y1], "label": ...}])',
                "target",
            )
        sets = Sets(services, loaded, chosen, batch.x, table, seat, progress, 1 + len(steps))
        original = maps_of(codec, explainers, table, await sets.next(None))
        curves: list[list[tuple[float, float | None]]] = [[] for _ in chosen]
        copy = await asyncio.to_thread(randomize.fresh_copy, loaded)
        for i, (_, block) in enumerate(randomize.blocks(copy)):
            await asyncio.to_thread(randomize.randomize, block, seed + i)
            compared = maps_of(codec, explainers, table, await sets.next(copy))
            for curve, a, b in zip(curves, original, compared, strict=True):
                curve.append(mean_similarity(a, b))
    results = [
        MethodCheck(echo(e, p, loaded), steps, [rho for rho, _ in curve], [s for _, s in curve], *verdict(curve))
        for (e, p), curve in zip(chosen, curves, strict=True)
    ]
    size = loaded.spec.input_size
    explained = [detect.boxes_of(table[i], raw[i], where, loaded, size) for i, where in enumerate(geometry)]
    total = (time.perf_counter() - started) * 1000.0
    return Checked(loaded.spec.name, "model_randomization", None, [], results, {"total": total}, explained)


class Sets:
    """Sets of box maps of the same images and boxes, on the served detector or a copy, with progress over
    all sets (each set's rows are admitted with the request: `seat`)."""

    def __init__(self, services, loaded, chosen, x: Tensor, table: Tensor, seat, progress, total_sets: int):
        self.services, self.loaded, self.chosen, self.x, self.table = services, loaded, chosen, x, table
        self.seat, self.progress, self.total_sets, self.done = seat, progress, total_sets, 0

    async def next(self, module) -> list[Explanation]:
        index = self.done

        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(index * total + done, total * self.total_sets)

        results = await detect.explain_boxes(
            self.services, self.loaded, self.chosen, self.x, self.table, report, self.seat, module=module
        )
        self.done += 1
        return results


def maps_of(codec: ImageCodec, explainers, table: Tensor, results: list[Explanation]) -> list[list[np.ndarray]]:
    """Per method, the 2-D map of every (image, box) with a box, reduced as the method's maps are shown."""
    images, slots = (table[..., 4] >= 0).nonzero(as_tuple=True)
    out = []
    for explainer, result in zip(explainers, results, strict=True):
        maps = result.attributions[images, slots].float()
        out.append([m.numpy() for m in reduce_channels(maps, codec.reduction(explainer))])
    return out
