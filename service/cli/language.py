"""A causal language model's answers in the commands: the request they send, the v1 JSON of a local explanation
(so that both ways read the client's `AnswersExplained`), and the prompt tokens a row of scores ranks first."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from saliency_client import LMToken

from .errors import CommandError

if TYPE_CHECKING:
    from ..codecs.tokens import Tokenized
    from ..core.causal import AnswersExplained

MAX_NEW_TOKENS = 8  # the model's own answer: this many new tokens at most, unless --max-new-tokens says
TOP_TOKENS = 5  # explain: prompt tokens listed per answer token, unless --top says


def answers_request(args: argparse.Namespace, method: dict[str, Any]) -> dict[str, Any]:
    """The model's own greedy answer (`generate`, --max-new-tokens) or --target, a continuation given for every
    prompt; the keys are the client's explain() arguments."""
    given = args.target not in (None, "predicted")
    if given and args.max_new_tokens is not None:
        raise CommandError("--max-new-tokens is for the model's own answer: --target gives the answer to explain")
    if given:
        return {"method": method, "target": args.target}
    new_tokens = MAX_NEW_TOKENS if args.max_new_tokens is None else args.max_new_tokens
    if new_tokens < 1:
        raise CommandError(f"--max-new-tokens {new_tokens}: at least 1")
    return {"method": method, "target": "predicted", "generate": {"max_new_tokens": new_tokens, "do_sample": False}}


def lm_only(args: argparse.Namespace, kind: str, *options: str) -> None:
    """A classifier's or detector's command given options that only a causal LM reads: one line."""
    for option in options:
        if getattr(args, option.removeprefix("--").replace("-", "_")) is not None:
            raise CommandError(f"{option} is for causal language models; {args.model} is a {kind} model")


def answers_json(result: AnswersExplained) -> dict[str, Any]:
    """A local explanation as the JSON a server sends (service/api/v1/causal_responses.py)."""
    results = []
    for answered, log_probs, maps in zip(result.answered, result.log_probs, result.maps, strict=True):
        results.append(
            {
                "prompt": {"text": answered.prompt.text, "tokens": tokens_json(answered.prompt)},
                "answer": {
                    "text": answered.answer.text,
                    "tokens": tokens_json(answered.answer, log_probs),
                    "log_prob": sum(log_probs),
                    "generated": result.generated,
                },
                "explanations": [{"method": m, **f} for m, f in zip(result.methods, maps, strict=True)],
            }
        )
    return {
        "model": result.model,
        "methods": result.methods,
        "include_generated": bool(result.answered and result.answered[0].include_generated),
        "results": results,
        "timing_ms": result.timing_ms,
    }


def tokens_json(tokenized: Tokenized, log_probs: list[float] | None = None) -> list[dict[str, Any]]:
    out = []
    marks = zip(tokenized.tokens, tokenized.offsets, tokenized.special, strict=True)
    for i, (name, where, special) in enumerate(marks):
        start, end = where if where is not None else (None, None)
        out.append(
            {
                "text": tokenized.text[start:end] if start is not None and end is not None else name,
                "id": tokenized.ids[i],
                "start": start,
                "end": end,
                "special": special,
                "log_prob": log_probs[i] if log_probs is not None else None,
            }
        )
    return out


@dataclass(frozen=True)
class Ranked:
    """A prompt token as a row of scores ranks it: its text, its index in the prompt, its score."""

    token: str
    index: int
    score: float

    def json(self) -> dict[str, Any]:
        return {"token": self.token, "index": self.index, "score": self.score}


def ranked(row: np.ndarray, prompt: list[LMToken], k: int | None = None) -> list[Ranked]:
    """The prompt's tokens (special ones left out) by their score in `row`, highest first (on ties, the earlier
    token first); the first k. A row with include_generated's answer columns is read up to the prompt's end."""
    scored = [j for j, token in enumerate(prompt) if not token.special]
    order = sorted(scored, key=lambda j: -float(row[j]))  # sorted() is stable: ties keep the prompt's order
    return [Ranked(prompt[j].text, j, float(row[j])) for j in order[:k]]


def word(token: LMToken) -> str:
    """A token's text without the space a byte-level tokenizer keeps in front of it (" cat" is "cat")."""
    return token.text.strip() or token.text
