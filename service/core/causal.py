"""predict (generate) and explain for causal language models.

Both count their rows before any token is embedded: generation max_new_tokens forward rows per prompt,
an explanation its methods' rows for every answer token (max_new_tokens of them when the model generates
the answer), so a request that would take hours is a 413 before any work. An explanation of the model's
own answer is two submissions under one reservation: the generation, then the methods' plans over the
prompt and the answer it produced (explainers/causal.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from ..codecs.base import Batch
from ..codecs.options import OutputOptions
from ..codecs.tokens import Answered, Tokenized, token_rows
from ..engine.plan import Plan
from ..engine.runner import Progress
from ..errors import InvalidInput, InvalidParameter, PayloadTooLarge
from ..explainers import ExplainContext, Explanation
from ..explainers.causal import answer_plan, evaluated_answers, occlusion_rows
from ..explainers.faithfulness import EvaluateSpec
from ..models import LoadedModel
from ..models.causal_lm import CONTEXT, PROMPT, CausalLM, pad_id
from . import plans
from .checks import check_evaluate, codec_of, echo, parse_methods
from .generation import Continuation, GenerateOptions, Generation, generation_plan
from .results import timings

if TYPE_CHECKING:  # the codec (and transformers) load when a causal LM is served, not at start-up
    from ..codecs.text.causal import CausalCodec
from .rows import RowCount, check_request, method_cost


@dataclass
class Generated:
    model: str
    generation: Generation
    prompts: list[Tokenized]
    continuations: list[Continuation]
    tokenizer: Any  # to decode the continuations (answer_of_ids)
    timing_ms: dict[str, float]


@dataclass
class AnswersExplained:
    model: str
    methods: list[dict[str, Any]]
    answered: list[Answered]
    log_probs: list[list[float]]  # per text, each answer token's log p under the model
    generated: bool
    maps: list[list[dict[str, Any]]]  # per text, per method: the codec's fields
    timing_ms: dict[str, float]


def generation_of(loaded: LoadedModel, given: GenerateOptions | None, prompts: list[Tokenized]) -> Generation:
    how = Generation.of(given, loaded.spec.generation)
    longest = max(len(p.ids) for p in prompts)
    if longest + how.max_new_tokens > loaded.spec.max_length:
        raise PayloadTooLarge(
            f"a prompt of {longest} tokens and max_new_tokens {how.max_new_tokens} are over the model's max_length "
            f"of {loaded.spec.max_length} tokens; lower generate.max_new_tokens or shorten the prompt",
            "generate.max_new_tokens",
        )
    return how


async def generated(services, loaded: LoadedModel, prompts: list[Tokenized], how: Generation, seat, progress=None):
    module = loaded.module
    assert isinstance(module, CausalLM)
    tokenizer = loaded.tokenizer

    def build() -> list[Plan]:
        ids = [p.ids for p in prompts]
        budget = services.settings.max_kv_cache_bytes if loaded.spec.generation.kv_cache else 0
        return [generation_plan(module, ids, how, tokenizer.eos_token_id, pad_id(tokenizer), budget)]

    rows = len(prompts) * how.max_new_tokens
    (out,) = await services.runner.submit(loaded, module, build, "logit", rows, progress, seat)
    return out


async def generate(services, loaded: LoadedModel, field: str, inputs: Sequence[Any], given: GenerateOptions | None):
    started = time.perf_counter()
    codec = codec_of(loaded, field)
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, [], None)
    batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
    how = generation_of(loaded, given, batch.items)
    check_request(RowCount(how.max_new_tokens, len(inputs)), services.settings, codec.field)
    decoded = time.perf_counter()
    with services.runner.reserved(loaded, len(inputs) * how.max_new_tokens, len(inputs)) as seat:
        out = await generated(services, loaded, batch.items, how, seat)
    done = time.perf_counter()
    return Generated(loaded.spec.name, how, batch.items, out, loaded.tokenizer, timings(started, decoded, done))


def count_rows(loaded: LoadedModel, chosen, prompts: list[Tokenized], answer_tokens: int, include_generated: bool):
    """Rows of the methods over every answer token: occlusion's per window, the others' per answer token."""
    per_text = []
    for prompt in prompts:
        rows = 0
        for explainer, params in chosen:
            if explainer.name == "occlusion":
                scored = torch.tensor([[not s for s in prompt.special] + [include_generated] * (answer_tokens - 1)])
                rows += answer_tokens + occlusion_rows(scored, params.window, params.stride)
            else:
                rows += answer_tokens * method_cost(loaded, explainer, params).forward
        per_text.append(rows)
    return RowCount(max(per_text), len(prompts), next((method_cost(loaded, e, p).driver for e, p in chosen), None))


@dataclass
class Work:
    """What an explanation of a causal LM's answers asks, checked before any token is embedded."""

    codec: CausalCodec
    chosen: list
    prompts: list[Tokenized]
    answers: list[Tokenized] | None  # the client's targets; None: the model's own (generated by `how`)
    how: Generation | None
    rows: RowCount  # of one set of maps, per text
    include_generated: bool

    @property
    def generation_rows(self) -> int:
        return self.how.max_new_tokens if self.how is not None else 0


async def plan(services, loaded, field, inputs, methods, target, given, several, include_generated) -> Work:
    codec = cast("CausalCodec", codec_of(loaded, field))
    chosen = parse_methods(services, methods, loaded, several)
    admitted = await services.codecs.run(codec.admit, inputs, loaded, services.settings, [], None)
    batch = await services.codecs.run(codec.decode, admitted, loaded, services.settings, None)
    prompts: list[Tokenized] = batch.items
    own = target in (None, "predicted")  # the model's own answer, with the TOML's generation where not given
    if not own and given is not None:
        raise InvalidInput("give either `target` (a continuation) or `generate`, not both", "generate")
    answers = None if own else codec.answers(target, len(prompts), loaded, services.settings)
    how = generation_of(loaded, given, prompts) if own else None
    if answers is not None:
        longest = max(len(p.ids) + len(a.ids) for p, a in zip(prompts, answers, strict=True))
        if longest > loaded.spec.max_length:
            raise PayloadTooLarge(f"prompt and target are {longest} tokens, over max_length", "target")
    answer_tokens = how.max_new_tokens if how is not None else max(len(a.ids) for a in answers or [])
    rows = count_rows(loaded, chosen, prompts, answer_tokens, include_generated)
    return Work(codec, chosen, prompts, answers, how, rows, include_generated)


async def answers_of(services, loaded: LoadedModel, work: Work, seat) -> tuple[list[Tokenized], list[list[float]]]:
    """The answers to explain, and each token's log-probability when the model generated them."""
    if work.how is None:
        assert work.answers is not None
        return work.answers, []
    out = await generated(services, loaded, work.prompts, work.how, seat)
    if any(not c.ids for c in out):
        raise InvalidParameter("the model generated no token to explain", "generate")
    return [answer_of(loaded, c) for c in out], [c.log_probs for c in out]


def teacher_forced(result: Explanation, answered: list[Answered]) -> list[list[float]]:
    """Each answer token's log-probability, from the unperturbed rows of a result."""
    picked = result.logits.gather(1, result.targets[:, None])[:, 0]
    return [picked[a.rows[0] : a.rows[1]].tolist() for a in answered]


async def explain(
    services,
    loaded: LoadedModel,
    field: str,
    inputs: Sequence[Any],
    methods: list[Any],
    target: Any,
    given: GenerateOptions | None,
    output: OutputOptions,
    progress: Progress | None,
    several: bool,
    include_generated: bool = False,
    evaluate: EvaluateSpec | None = None,
) -> AnswersExplained:
    started = time.perf_counter()
    work = await plan(services, loaded, field, inputs, methods, target, given, several, include_generated)
    explainers = [e for e, _ in work.chosen]
    evaluation = check_evaluate(evaluate, work.codec, explainers, services.settings, output, len(work.prompts))
    evaluated = evaluate.rows_per_image() * len(explainers) if evaluate is not None else 0
    total = RowCount(work.rows.per_input + work.generation_rows + evaluated, work.rows.inputs, work.rows.driver)
    check_request(total, services.settings, work.codec.field)
    decoded = time.perf_counter()
    with services.runner.reserved(loaded, total.total, len(work.prompts)) as seat:
        answers, log_probs = await answers_of(services, loaded, work, seat)
        answered, x = layout(loaded, work.prompts, answers, include_generated)
        results = await explain_answers(
            services, loaded, work.chosen, x, answered, include_generated, progress, seat, evaluation=evaluation
        )
    modelled = time.perf_counter()
    maps = await services.codecs.run(work.codec.render, Batch(x, answered), results, explainers, output)
    return AnswersExplained(
        loaded.spec.name,
        [echo(e, p, loaded) for e, p in work.chosen],
        answered,
        log_probs or teacher_forced(results[0], answered),
        work.how is not None,
        maps,
        timings(started, decoded, modelled),
    )


def answer_of(loaded: LoadedModel, continuation: Continuation) -> Tokenized:
    return answer_of_ids(loaded.tokenizer, continuation.ids)


def answer_of_ids(tokenizer: Any, ids: list[int]) -> Tokenized:
    """Generated tokens as an answer: the decoded text (special tokens left out), each token's offsets in it."""
    specials = set(tokenizer.all_special_ids)
    offsets: list[tuple[int, int] | None] = []
    text = ""
    for i, token_id in enumerate(ids):
        if token_id in specials:
            offsets.append(None)
            continue
        piece = tokenizer.decode(ids[: i + 1], skip_special_tokens=True)
        offsets.append((len(text), len(piece)))
        text = piece
    return Tokenized(text, list(ids), tokenizer.convert_ids_to_tokens(ids), offsets, [i in specials for i in ids])


def layout(loaded: LoadedModel, prompts: list[Tokenized], answers: list[Tokenized], include_generated: bool):
    """Each text's rows (one per answer token) and the token rows (N, T, 2) of prompt + answer."""
    answered, start = [], 0
    for prompt, answer in zip(prompts, answers, strict=True):
        answered.append(Answered(prompt, answer, (start, start + len(answer.ids)), include_generated))
        start += len(answer.ids)
    ids = [p.ids + a.ids for p, a in zip(prompts, answers, strict=True)]
    roles = [[PROMPT] * len(p.ids) + [CONTEXT] * len(a.ids) for p, a in zip(prompts, answers, strict=True)]
    return answered, token_rows(ids, roles, loaded)


async def explain_answers(
    services,
    loaded,
    chosen,
    x,
    answered: list[Answered],
    include_generated,
    progress,
    seat,
    module=None,
    evaluation=None,
) -> list[Explanation]:
    """The methods' rows over each answer token, on the served model or on `module` (a randomized copy); with
    `evaluation` (the metrics, each method's reduction) each goes on to the answers' faithfulness curves."""
    module = module if module is not None else loaded.module
    assert isinstance(module, CausalLM)
    spans = [(len(a.prompt.ids), len(a.answer.ids)) for a in answered]
    rows = sum(
        (a.rows[1] - a.rows[0]) * method_cost(loaded, e, p).forward
        if e.name != "occlusion"
        else len(a.prompt.ids) + (a.rows[1] - a.rows[0])
        for a in answered
        for e, p in chosen
    ) + (evaluation[0].rows_per_image() * len(chosen) * len(answered) if evaluation is not None else 0)

    def build() -> list[Plan]:
        space = plans.text_space(loaded, module)
        ctx = ExplainContext(text=space)
        rows_x = plans.model_rows(loaded, x, module)
        made = [answer_plan(e, module, rows_x, spans, p, ctx, include_generated) for e, p in chosen]
        if evaluation is not None:
            spec, reductions = evaluation
            made = [
                evaluated_answers(m, rows_x, spans, space, how, spec) for m, how in zip(made, reductions, strict=True)
            ]
        return [plans.to_cpu(m) for m in made]

    results: list[Explanation] = await services.runner.submit(
        loaded, module, build, "logit", max(1, rows), progress, seat
    )
    return results
