"""predict and explain: lookups and checks, the codec, the engine -> domain results (results.py).

Protocol-neutral: neither FastAPI nor an API's schemas. v1 and v2 (service/api) each turn these results
into their JSON; the commands (service/cli) call them directly. Which modality a model has is its codec's
business (service/codecs): this module holds a codec and never looks inside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ..codecs.options import OutputOptions
from ..engine.plan import Objective
from ..engine.runner import Progress
from ..errors import InvalidInput
from ..explainers.faithfulness import EvaluateSpec
from . import causal, detect, plans
from .checks import Target, check_evaluate, check_top_k, codec_of, echo, parse_methods, resolve_targets
from .generation import GenerateOptions
from .results import Explained, Predicted, rank, ranked, timings
from .rows import RowCount, check_request, count_rows
from .services import Services


async def predict(
    services: Services,
    model: str,
    field: str,
    inputs: Sequence[Any],
    top_k: int,
    generate: GenerateOptions | None = None,
) -> Predicted | detect.Detected | causal.Generated:
    """A causal LM's prediction is its continuation of each text (`generate`: how)."""
    started = time.perf_counter()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    if loaded.kind == "causal_lm":
        return await causal.generate(services, loaded, field, inputs, generate)
    if generate is not None:
        raise InvalidInput(f"`generate` is for causal language models; {model!r} is a {loaded.kind} model", "generate")
    if loaded.kind == "detection":
        return await detect.predict(services, loaded, field, inputs)
    codec = codec_of(loaded, field)
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, [], None)
    check_request(RowCount(1, len(inputs)), services.settings, codec.field)
    with services.runner.reserved(loaded, len(inputs), len(inputs)) as seat:  # before decoding: a cheap refusal
        batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
        decoded = time.perf_counter()
        logits = await plans.predict(services.runner, loaded, batch.x, seat)
    done = time.perf_counter()
    return Predicted(model, ranked(logits, top_k, loaded.labels), timings(started, decoded, done), logits, batch.items)


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
    generate: GenerateOptions | None = None,
    include_generated: bool = False,
) -> Explained | detect.DetectionsExplained | causal.AnswersExplained:
    """`field` names the request's inputs ("images", "texts"); `several`: the request named a list of methods
    (errors then say `methods.i`). A causal LM explains `target` (a continuation) or its own answer
    (`generate`); `include_generated` scores the earlier answer tokens too."""
    started = time.perf_counter()
    output = output or OutputOptions()
    check_top_k(top_k, services.settings)
    loaded = await asyncio.to_thread(services.pool.get, model)
    if loaded.kind == "causal_lm":
        return await causal.explain(
            services, loaded, field, inputs, methods, target, generate, output, progress, several, include_generated,
            evaluate,
        )  # fmt: skip
    if generate is not None or include_generated:
        what = "generate" if generate is not None else "include_generated"
        raise InvalidInput(f"`{what}` is for causal language models; {model!r} is a {loaded.kind} model", what)
    if loaded.kind == "detection":
        return await detect.explain(
            services, loaded, field, inputs, methods, target, output, progress, several, evaluate
        )
    codec = codec_of(loaded, field)
    chosen = parse_methods(services, methods, loaded, several)
    targets = resolve_targets(target, len(inputs), loaded)
    explainers = [e for e, _ in chosen]
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, explainers, output)
    evaluation = check_evaluate(evaluate, codec, explainers, services.settings, output, len(inputs))
    rows = count_rows(loaded, chosen, len(inputs), evaluate)
    check_request(rows, services.settings, codec.field)
    with services.runner.reserved(loaded, rows.total, len(inputs)) as seat:  # before decoding: a cheap refusal
        batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, output)
        del admitted
        decoded = time.perf_counter()
        results = await plans.explain(
            services.runner, loaded, chosen, batch.x, targets, objective, progress, evaluation, reservation=seat
        )
    modelled = time.perf_counter()
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
        batch.items,
    )
