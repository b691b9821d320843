"""The sanity endpoint's work: the original maps, then the maps of randomized models, compared.

- model randomization: a fresh copy of the served model (randomize.fresh_copy) has its top-level blocks
  re-initialized one at a time from the output down, cumulatively; after each block the maps are recomputed.
- detectors (boxes.py): the same cascade over the detector's parts, one map per box; causal LMs
  (answers.py): over the decoder blocks, the prompt's scores per answer token.
- data randomization: the maps of a reference model trained on shuffled labels, same architecture.
Every map explains the class the original model's map explained, so only the model changes. The copy's
passes go through the device's scheduler like any request's (batched, counted, cancellable); the served
model is only read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor

from ...codecs import Codec
from ...engine.runner import Progress
from ...errors import InvalidInput, InvalidParameter
from ...models import LoadedModel
from ..checks import Target, check_method, codec_of, echo, parse_methods, resolve_targets
from ..plans import Method
from ..results import Ranked, rank
from ..rows import RowCount, check_request, count_rows
from ..services import Services
from . import answers, boxes, randomize
from .runs import MapSet, Runs
from .similarity import mean_similarity
from .verdict import Threshold, verdict

Test = Literal["model_randomization", "data_randomization"]


@dataclass
class MethodCheck:
    method: dict[str, Any]
    steps: list[str]  # what was randomized at each step (cumulative blocks), or the reference model
    spearman: list[float]  # per step, mean over the inputs
    ssim: list[float | None]
    verdict: Literal["pass", "fail"]
    threshold: Threshold


@dataclass
class Checked:
    model: str
    test: Test
    reference_model: str | None
    targets: list[Ranked]  # per input, the class every map explains
    results: list[MethodCheck]
    timing_ms: dict[str, float]
    detections: list | None = None  # detectors: per image, the boxes every map explains (core/detect.Detection)
    answers: list[str] | None = None  # causal LMs: per text, the answer every set of scores explains


@dataclass
class Work:
    """What one request checks, known before any image is decoded."""

    loaded: LoadedModel
    codec: Codec
    methods: list[Method]
    steps: list[str]
    reference: LoadedModel | None
    rows: RowCount  # of one set of maps

    @property
    def total_rows(self) -> int:
        """The original maps and one set per step."""
        return self.rows.total * (1 + len(self.steps))


async def sanity(
    services: Services,
    model: str,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    *,
    test: Test = "model_randomization",
    reference_model: str | None = None,
    target: Target | list[Target] = "predicted",
    seed: int = 0,
    progress: Progress | None = None,
) -> Checked:
    loaded = await asyncio.to_thread(services.pool.get, model)
    if loaded.kind in ("detection", "causal_lm"):
        checker = boxes.check if loaded.kind == "detection" else answers.check
        return await checker(
            services, loaded, field, inputs, methods, test=test, reference_model=reference_model,
            target=target, seed=seed, progress=progress,
        )  # fmt: skip
    started = time.perf_counter()
    work = await plan(services, model, field, inputs, methods, test, reference_model)
    targets = resolve_targets(target, len(inputs), work.loaded)
    explainers = [e for e, _ in work.methods]
    admitted = await services.codecs.run(work.codec.admit, inputs, work.loaded, services.settings, explainers, None)
    with services.runner.reserved(work.loaded, work.total_rows, len(inputs)) as seat:
        batch = await services.codecs.run(work.codec.decode, admitted, work.loaded, services.settings, None)
        curves, original = await compare(work, Runs(services, work, batch, seat, progress), targets, seed)
    results = [
        MethodCheck(
            echo(e, p, work.loaded), work.steps, [rho for rho, _ in curve], [s for _, s in curve], *verdict(curve)
        )
        for (e, p), curve in zip(work.methods, curves, strict=True)
    ]
    probs = original.logits.softmax(dim=1)
    targets = original.targets
    explained = [rank(original.logits[i], probs[i], int(targets[i]), work.loaded.labels) for i in range(len(targets))]
    total = (time.perf_counter() - started) * 1000.0
    return Checked(model, test, reference_model, explained, results, {"total": total})


async def compare(
    work: Work, runs: Runs, targets: Tensor, seed: int
) -> tuple[list[list[tuple[float, float | None]]], MapSet]:
    """Per method, (rank correlation, SSIM) of each set of maps with the original, and the original."""
    original = await runs.maps(work.loaded, None, targets)
    targets = original.targets
    curves: list[list[tuple[float, float | None]]] = [[] for _ in work.methods]
    if work.reference is not None:
        compared = await runs.maps(work.reference, None, targets)
        add(curves, original.per_method, compared.per_method)
    else:
        copy = await asyncio.to_thread(randomize.fresh_copy, work.loaded)
        for i, (_, block) in enumerate(randomize.blocks(copy)):
            await asyncio.to_thread(randomize.randomize, block, seed + i)
            compared = await runs.maps(work.loaded, copy, targets)
            add(curves, original.per_method, compared.per_method)
    return curves, original


async def plan(
    services: Services,
    model: str,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    test: Test,
    reference_model: str | None,
) -> Work:
    """The request checked against the models and the limits, before decoding anything."""
    loaded = await asyncio.to_thread(services.pool.get, model)
    codec = codec_of(loaded, field)
    chosen = parse_methods(services, methods, loaded, several=True)
    reference = None
    if test == "data_randomization":
        if reference_model is None:
            raise InvalidInput("data_randomization needs reference_model (shuffled-labels model)", "reference_model")
        with_field = "reference_model"
        if reference_model == model:
            raise InvalidParameter("the reference model must be another model (trained on shuffled labels)", with_field)
        reference = await asyncio.to_thread(services.pool.get, reference_model)
        same(loaded, reference, with_field)
        for e, p in chosen:
            check_method(e, p, reference, services.settings)
        steps = [reference_model]
    else:
        if reference_model is not None:
            raise InvalidInput("reference_model is for test=data_randomization", "reference_model")
        served = loaded.prepared.original if loaded.prepared is not None else loaded.module
        steps = cumulative([name for name, _ in randomize.blocks(served)])
        if not steps:
            raise InvalidParameter(f"model {model!r} has no parameters to randomize", "test")
    rows = count_rows(loaded, chosen, len(inputs))
    check_request(rows, services.settings, codec.field, sets=1 + len(steps))
    return Work(loaded, codec, chosen, steps, reference, rows)


def cumulative(names: list[str]) -> list[str]:
    """Step i randomizes blocks 0..i: named by the blocks so far, e.g. "fc", "fc+block4"."""
    return ["+".join(names[: i + 1]) for i in range(len(names))]


def same(loaded: LoadedModel, reference: LoadedModel, field: str) -> None:
    a, b = loaded.spec, reference.spec
    if a.kind != b.kind or loaded.input_shape != reference.input_shape or a.num_classes != b.num_classes:
        raise InvalidParameter(
            f"reference model {b.name!r} does not take the same inputs and classes as {a.name!r}", field
        )
    if a.kind == "image" and (a.mean, a.std) != (b.mean, b.std):
        raise InvalidParameter(f"reference model {b.name!r} normalizes its inputs differently from {a.name!r}", field)


def add(curves: list[list], originals: list[list[np.ndarray]], others: list[list[np.ndarray]]) -> None:
    for curve, a, b in zip(curves, originals, others, strict=True):
        curve.append(mean_similarity(a, b))
