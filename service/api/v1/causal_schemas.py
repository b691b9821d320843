"""v1's response bodies for causal language models: continuations, and prompt-token scores per answer token."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .schemas import Faithfulness


class LMToken(BaseModel):
    text: str = Field(description="The token's characters in its text; a special token by its name.")
    id: int = Field(description="The token's id in the model's vocabulary.")
    start: int | None = Field(description="Character offset in its text (the prompt, or the answer); null if special.")
    end: int | None
    special: bool
    log_prob: float | None = Field(None, description="Answer tokens: log p(token | everything before it).")


class Continuation(BaseModel):
    text: str = Field(description="The new tokens decoded, special tokens left out.")
    tokens: list[LMToken]
    log_prob: float = Field(description="The continuation's log-probability: the sum over its tokens.")
    finish_reason: Literal["eos", "length"] = Field(
        description="eos: the end-of-sequence token; length: max_new_tokens."
    )


class GenerateResult(BaseModel):
    prompt_tokens: list[LMToken]
    continuation: Continuation


class GenerateResponse(BaseModel):
    model: str
    generation: dict[str, Any] = Field(
        description="The generation used: the request's, the model's defaults filled in."
    )
    results: list[GenerateResult]
    timing_ms: dict[str, float]


class Prompt(BaseModel):
    text: str
    tokens: list[LMToken]


class Answer(BaseModel):
    text: str
    tokens: list[LMToken] = Field(description="The answer's tokens, each with its log-probability.")
    log_prob: float = Field(description="The summed log-probability that `answer_scores` explain.")
    generated: bool = Field(description="true: the model's own answer (generate); false: the client's target.")


class AnswerExplanation(BaseModel):
    method: dict[str, Any]
    scores: list[list[float]] = Field(
        description="One row per answer token: the scores of the prompt's tokens for that token's log-probability "
        "(with include_generated, then of the answer's tokens: those at or after the row's token score 0)."
    )
    answer_scores: list[float] = Field(description="The same for the whole answer's summed log-probability.")
    diagnostics: dict[str, list[float]] = Field(description="Per answer token, e.g. completeness_delta.")
    html: str | None = Field(None, description="With output.html: the prompt highlighted by `answer_scores`.")
    html_tokens: list[str] | None = Field(
        None, description="With output.html: the prompt highlighted by each answer token's row of `scores`."
    )
    faithfulness: dict[str, Faithfulness] | None = Field(
        None,
        description="With `evaluate`: deletion and insertion of the prompt's tokens ranked by `answer_scores`; "
        "the curve is the answer's summed log-probability.",
    )


class AnswerResult(BaseModel):
    prompt: Prompt
    answer: Answer
    explanations: list[AnswerExplanation] = Field(description="One per method, in request order.")


class AnswerExplainResponse(BaseModel):
    model: str
    methods: list[dict[str, Any]]
    include_generated: bool
    results: list[AnswerResult]
    timing_ms: dict[str, float]
