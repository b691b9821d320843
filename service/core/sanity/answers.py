"""The sanity endpoint for causal LMs: the answer tokens' prompt scores on the served model, then on copies
randomized block by block from the output down (the final norm, each decoder block, the position and
token embeddings: randomize.blocks; a head tied to the token embedding goes with it).

The answer is fixed once (the client's target, or the served model's own generation) and every set of
scores explains the same answer tokens. A map is a text's whole matrix of scores (answer tokens x prompt
tokens); the similarity of a step is the mean over texts of the rank correlation of |scores| (texts have
no SSIM).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...engine.runner import Progress
from ...errors import InvalidParameter
from ...explainers.text_space import token_scores
from ...models import LoadedModel
from .. import causal
from ..checks import echo
from ..rows import RowCount, check_request
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
        why = "language models are checked by model_randomization (there is no shuffled-labels reference model)"
        raise InvalidParameter(why, "test" if test != "model_randomization" else "reference_model")
    work = await causal.plan(services, loaded, field, inputs, methods, target, None, True, False)
    steps = cumulative([name for name, _ in randomize.blocks(loaded.module)])
    per_text = work.rows.per_input * (1 + len(steps)) + work.generation_rows
    count = RowCount(per_text, work.rows.inputs, work.rows.driver)
    check_request(count, services.settings, work.codec.field)
    explainers = [e for e, _ in work.chosen]
    sets, done = 1 + len(steps), [0]

    def report(finished: int, total: int) -> None:
        if progress is not None:
            progress(done[0] * total + finished, total * sets)

    async def maps(module=None) -> list[list[np.ndarray]]:
        results = await causal.explain_answers(
            services, loaded, work.chosen, x, answered, False, report, seat, module=module
        )
        done[0] += 1
        out = []
        for explainer, result in zip(explainers, results, strict=True):
            scores = token_scores(result.attributions.float(), work.codec.reduction(explainer))
            # Flattened: a matrix of token scores is no picture, SSIM does not apply.
            out.append([scores[a.rows[0] : a.rows[1], : len(a.prompt.ids)].numpy().ravel() for a in answered])
        return out

    with services.runner.reserved(loaded, count.total, len(work.prompts)) as seat:
        answers, _ = await causal.answers_of(services, loaded, work, seat)
        answered, x = causal.layout(loaded, work.prompts, answers, False)
        original = await maps()
        curves: list[list[tuple[float, float | None]]] = [[] for _ in work.chosen]
        copy = await asyncio.to_thread(randomize.fresh_copy, loaded)
        for i, (_, block) in enumerate(randomize.blocks(copy)):
            await asyncio.to_thread(randomize.randomize, block, seed + i)
            compared = await maps(copy)
            for curve, a, b in zip(curves, original, compared, strict=True):
                curve.append(mean_similarity(a, b))
    results = [
        MethodCheck(echo(e, p, loaded), steps, [rho for rho, _ in c], [s for _, s in c], *verdict(c))
        for (e, p), c in zip(work.chosen, curves, strict=True)
    ]
    total = (time.perf_counter() - started) * 1000.0
    answered_texts = [a.answer.text for a in answered]
    return Checked(loaded.spec.name, "model_randomization", None, [], results, {"total": total}, None, answered_texts)
