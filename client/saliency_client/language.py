"""The client's results for causal language models: continuations, and per answer token a numpy row of
prompt-token scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from .errors import ServiceError
from .results import Faithfulness


class GenerateOptions(TypedDict, total=False):
    """`generate` of a request to a causal LM; what is left out is the model's default."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    seed: int


@dataclass(frozen=True)
class LMToken:
    """A token: its text, its character offsets in its own text (None for special tokens) and, for an
    answer's tokens, log p(token | everything before it)."""

    text: str
    id: int
    start: int | None
    end: int | None
    special: bool
    log_prob: float | None


@dataclass(frozen=True)
class Continuation:
    prompt_tokens: list[LMToken]
    text: str
    tokens: list[LMToken]
    log_prob: float
    finish_reason: str  # "eos" or "length"


@dataclass(frozen=True)
class Generated:
    model: str
    generation: dict[str, Any]
    results: list[Continuation]
    timing_ms: dict[str, float]
    request_id: str | None = None


@dataclass(frozen=True)
class AnswerExplanation:
    """One method's scores of one text: `scores` (answer tokens x scored tokens) and `answer_scores` (the
    whole answer's summed log-probability), numpy float arrays."""

    method: dict[str, Any]
    scores: np.ndarray
    answer_scores: np.ndarray
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    faithfulness: dict[str, Faithfulness] = field(default_factory=dict)  # with `evaluate`: deletion, insertion


@dataclass(frozen=True)
class Answered:
    prompt: str
    prompt_tokens: list[LMToken]
    answer: str
    answer_tokens: list[LMToken]
    log_prob: float
    generated: bool
    explanations: list[AnswerExplanation]

    @property
    def explanation(self) -> AnswerExplanation:
        """The only method's scores (a request with one method)."""
        if len(self.explanations) != 1:
            raise ValueError(f"{len(self.explanations)} methods: use .explanations")
        return self.explanations[0]


@dataclass(frozen=True)
class AnswersExplained:
    model: str
    methods: list[dict[str, Any]]
    include_generated: bool
    results: list[Answered]
    timing_ms: dict[str, float]
    request_id: str | None = None


def token(item: dict[str, Any]) -> LMToken:
    return LMToken(item["text"], item["id"], item["start"], item["end"], item["special"], item.get("log_prob"))


def parse_generated(body: dict[str, Any], request_id: str | None = None) -> Generated:
    try:
        results = []
        for item in body["results"]:
            c = item["continuation"]
            tokens = [token(t) for t in c["tokens"]]
            prompt = [token(t) for t in item["prompt_tokens"]]
            results.append(Continuation(prompt, c["text"], tokens, c["log_prob"], c["finish_reason"]))
        return Generated(body["model"], body["generation"], results, body["timing_ms"], request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError("invalid_response", f"not a v1 generation: {exc}", request_id=request_id) from None


def parse_answers(body: dict[str, Any], request_id: str | None = None) -> AnswersExplained:
    try:
        results = []
        for item in body["results"]:
            explanations = [
                AnswerExplanation(
                    e["method"],
                    np.asarray(e["scores"], dtype=np.float64).reshape(len(e["scores"]), -1),
                    np.asarray(e["answer_scores"], dtype=np.float64),
                    e.get("diagnostics", {}),
                    {
                        k: Faithfulness(v["auc"], v["random_auc"], v["curve"])
                        for k, v in (e.get("faithfulness") or {}).items()
                    },
                )
                for e in item["explanations"]
            ]
            prompt, answer = item["prompt"], item["answer"]
            results.append(
                Answered(
                    prompt["text"],
                    [token(t) for t in prompt["tokens"]],
                    answer["text"],
                    [token(t) for t in answer["tokens"]],
                    answer["log_prob"],
                    answer["generated"],
                    explanations,
                )  # fmt: skip
            )
        return AnswersExplained(
            body["model"], body["methods"], body["include_generated"], results, body["timing_ms"], request_id
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError("invalid_response", f"not a v1 explanation: {exc}", request_id=request_id) from None
