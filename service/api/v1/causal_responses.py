"""v1's JSON of a causal LM's results (core/causal.py)."""

from __future__ import annotations

from dataclasses import asdict

from ...codecs.tokens import Tokenized
from ...core.causal import AnswersExplained, Generated
from .causal_schemas import (
    Answer,
    AnswerExplainResponse,
    AnswerExplanation,
    AnswerResult,
    Continuation,
    GenerateResponse,
    GenerateResult,
    LMToken,
    Prompt,
)


def tokens(tokenized: Tokenized, log_probs: list[float] | None = None) -> list[LMToken]:
    """Each token's characters in its text (special tokens by their name), offsets, id and log-probability."""
    out = []
    for i, (name, where, special) in enumerate(
        zip(tokenized.tokens, tokenized.offsets, tokenized.special, strict=True)
    ):
        start, end = where if where is not None else (None, None)
        text = tokenized.text[start:end] if start is not None and end is not None else name
        log_prob = log_probs[i] if log_probs is not None else None
        token_id = tokenized.ids[i]
        out.append(LMToken(text=text, id=token_id, start=start, end=end, special=special, log_prob=log_prob))
    return out


def generated_response(result: Generated) -> GenerateResponse:
    from ...core.causal import answer_of_ids

    results = []
    for prompt, continuation in zip(result.prompts, result.continuations, strict=True):
        answer = answer_of_ids(result.tokenizer, continuation.ids)
        results.append(
            GenerateResult(
                prompt_tokens=tokens(prompt),
                continuation=Continuation(
                    text=answer.text,
                    tokens=tokens(answer, continuation.log_probs),
                    log_prob=sum(continuation.log_probs),
                    finish_reason=continuation.finish,
                ),
            )
        )
    return GenerateResponse(
        model=result.model, generation=asdict(result.generation), results=results, timing_ms=result.timing_ms
    )


def answers_response(result: AnswersExplained) -> AnswerExplainResponse:
    results = []
    for answered, log_probs, maps in zip(result.answered, result.log_probs, result.maps, strict=True):
        results.append(
            AnswerResult(
                prompt=Prompt(text=answered.prompt.text, tokens=tokens(answered.prompt)),
                answer=Answer(
                    text=answered.answer.text,
                    tokens=tokens(answered.answer, log_probs),
                    log_prob=sum(log_probs),
                    generated=result.generated,
                ),
                explanations=[AnswerExplanation(method=m, **f) for m, f in zip(result.methods, maps, strict=True)],
            )
        )
    return AnswerExplainResponse(
        model=result.model,
        methods=result.methods,
        include_generated=bool(result.answered and result.answered[0].include_generated),
        results=results,
        timing_ms=result.timing_ms,
    )
