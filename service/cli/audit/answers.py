"""The audit of a causal language model: every prompt's answer (the model's own, or --target) explained, then per
answer token position (the 1st, 2nd, ... answer token) and for the whole answer, the prompt tokens that most
often get a row's top score; per prompt its answer and the prompt token its whole answer ranks first.

A row (one per answer token, and the whole answer's) is scaled by its largest absolute score over the prompt's
tokens, to [-1, 1] keeping the sign, so that rows of different prompts and methods can be compared; its top
token is the one with the highest score (the earlier one on ties). A row with no score (all zero) has no top.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from saliency_client import Answered, LMToken, Token

from ..language import ranked, word
from . import pictures
from .inputs import Item

TOP = 5  # tokens per row kind in the summary and the report


@dataclass
class Tally:
    """The rows of one kind (an answer token position, or the whole answer): per prompt token (its text), how
    often it got a row's top score, how many rows' prompts held it, and the sum of its scaled scores there (a
    token twice in a prompt: its higher score)."""

    rows: int = 0
    empty: int = 0  # rows with no score: no top
    top: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, row: np.ndarray, prompt: list[LMToken]) -> tuple[str, int, float] | None:
        """Counts the row; returns its top token (its text, index in the prompt, scaled score)."""
        order = ranked(row, prompt)
        scale = max((abs(r.score) for r in order), default=0.0)
        if not (scale > 0 and math.isfinite(scale)):
            self.empty += 1
            return None
        self.rows += 1
        best: dict[str, float] = {}  # a token's text at its highest score in the row (it may occur twice)
        for r in order:
            best.setdefault(word(prompt[r.index]), r.score / scale)
        for text, score in best.items():
            self.seen[text] += 1
            self.sums[text] += score
        first = order[0]
        self.top[word(prompt[first.index])] += 1
        return word(prompt[first.index]), first.index, first.score / scale

    def leaders(self, k: int = TOP) -> list[dict]:
        """The k tokens that got the top score most often (then by mean scaled score, then by text): how often,
        in how many rows' prompts, and their mean scaled score over those rows."""
        mean = {text: self.sums[text] / self.seen[text] for text in self.top}
        order = sorted(self.top, key=lambda t: (-self.top[t], -mean[t], t))[:k]
        return [{"token": t, "top": self.top[t], "seen": self.seen[t], "mean_score": round(mean[t], 4)} for t in order]

    def json(self) -> dict:
        return {"rows": self.rows, "empty_rows": self.empty, "top_tokens": self.leaders()}


@dataclass(frozen=True)
class Prompted:
    """One explained prompt, as the report lists it."""

    name: str
    prompt: str
    answer: str
    top: tuple[str, int, float] | None  # the whole answer's top prompt token: text, index, scaled score
    highlighted: str  # the prompt's HTML, each token on its whole-answer score's colour

    def json(self) -> dict:
        top = None if self.top is None else {"token": self.top[0], "index": self.top[1], "score": round(self.top[2], 4)}
        return {"name": self.name, "prompt": self.prompt, "answer": self.answer, "top": top}


@dataclass
class AnswerAudit:
    """Every explained prompt goes through add(); the report and the summary read the tallies."""

    whole: Tally = field(default_factory=Tally)
    positions: list[Tally] = field(default_factory=list)  # the 1st answer token's rows, the 2nd's, ...
    prompts: list[Prompted] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, item: Item, result: Answered) -> None:
        explanation = result.explanation
        tokens = result.prompt_tokens
        for position, row in enumerate(explanation.scores):
            if position == len(self.positions):
                self.positions.append(Tally())
            self.positions[position].add(row, tokens)
        whole = explanation.answer_scores
        top = self.whole.add(whole, tokens)
        shown = highlighted(result.prompt, tokens, whole)
        self.prompts.append(Prompted(item.name, result.prompt, result.answer, top, shown))

    def skip(self, item: Item, why: str) -> None:
        self.skipped.append((item.name, why))

    def summary(self) -> dict:
        return {
            "explained": len(self.prompts),
            "skipped": len(self.skipped),
            "whole_answer": self.whole.json(),
            "positions": [{"position": i + 1, **tally.json()} for i, tally in enumerate(self.positions)],
            "prompts": [p.json() for p in self.prompts],
        }


def highlighted(prompt: str, tokens: list[LMToken], scores: np.ndarray) -> str:
    """The prompt with each token on its score's colour (the classifiers' text highlighting)."""
    shown = [Token(t.text, t.start, t.end, t.special, float(scores[j])) for j, t in enumerate(tokens)]
    return pictures.text(prompt, shown)
