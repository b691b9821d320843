"""The core's domain results: what v1 and v2 turn into their JSON, and what the commands read."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..engine.plan import Objective


@dataclass(frozen=True)
class Ranked:
    """One class of one input: its index, label, probability and logit."""

    index: int
    label: str | None
    probability: float
    logit: float


@dataclass
class Explained:
    model: str
    methods: list[dict[str, Any]]  # each method with every parameter (and a CAM method's resolved layer)
    objective: Objective
    predictions: list[list[Ranked]]  # per input, the top k
    targets: list[Ranked]  # per input, the class explained
    maps: list[list[dict[str, Any]]]  # per input, per method: the codec's map fields
    timing_ms: dict[str, float]
    logits: Tensor | None = None  # (N, K): every class, for protocols that return whole tensors (v2)
    inputs: list[Any] | None = None  # per input, what the codec made of it (a text's token ids and offsets)


@dataclass
class Predicted:
    model: str
    predictions: list[list[Ranked]]
    timing_ms: dict[str, float]
    logits: Tensor | None = None  # (N, K)
    inputs: list[Any] | None = None  # as Explained's


def ranked(logits: Tensor, top_k: int, labels: list[str] | None) -> list[list[Ranked]]:
    probs = logits.float().softmax(dim=1)
    top = probs.topk(min(top_k, logits.shape[1]), dim=1)
    return [
        [rank(row_logits, row_probs, int(i), labels) for i in idx]
        for row_logits, row_probs, idx in zip(logits, probs, top.indices, strict=True)
    ]


def rank(logits: Tensor, probs: Tensor, index: int, labels: list[str] | None) -> Ranked:
    return Ranked(index, labels[index] if labels else None, float(probs[index]), float(logits[index]))


def timings(started: float, decoded: float, modelled: float) -> dict[str, float]:
    now = time.perf_counter()
    ms = 1000.0
    return {
        "decode": (decoded - started) * ms,
        "model": (modelled - decoded) * ms,
        "encode": (now - modelled) * ms,
        "total": (now - started) * ms,
    }
