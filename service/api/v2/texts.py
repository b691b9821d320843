"""Texts over v2: a classifier's tokens and scores, and a causal LM's generation or explained answers, as
padded tensors of the numbers v1 returns (service/api/v1/responses.py, causal_responses.py).

Tokens differ in number from text to text; each tensor is padded to the batch's longest: ids and offsets
with -1 (no token has that id), scores and log-probabilities with 0.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from ... import core
from ...core.causal import AnswersExplained, Generated, answer_of_ids
from ...errors import within_field
from .parse import Call
from .schemas import CausalExplainParameter
from .tensors import array_of

Values = dict[str, np.ndarray | None]
NO_OFFSETS = (-1, -1)  # a special token's: it has no place in the text


def padded(rows: list[np.ndarray], fill: float) -> np.ndarray:
    """(N, *the largest of each dimension) of rows that have the same number of dimensions."""
    shape = np.max([row.shape for row in rows], axis=0)
    out = np.full((len(rows), *shape), fill, rows[0].dtype)
    for i, row in enumerate(rows):
        out[i][tuple(slice(0, n) for n in row.shape)] = row
    return out


def ids(rows: list[list[int]]) -> np.ndarray:
    return padded([np.array(row, np.int64) for row in rows], -1)


def strings(items: list[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)  # np.array would make a fixed-width str array
    out[:] = items
    return out


def tokens(items: list[Any] | None) -> Values:
    """A classifier's `token_ids` [N, T] and `token_offsets` [N, T, 2]: the text codec's tokens, as v1's."""
    assert items is not None
    offsets = [
        np.array([NO_OFFSETS if s else where for where, s in zip(it["offsets"], it["special"], strict=True)], np.int64)
        for it in items
    ]
    return {"token_ids": ids([it["ids"] for it in items]), "token_offsets": padded(offsets, -1)}


def scores(maps: list[list[dict[str, Any]]]) -> np.ndarray:
    """A classifier's `scores` [N, T]: each text's float32 per-token scores, v1's `saliency`."""
    return padded([array_of(per_method[0]["saliency"]) for per_method in maps], 0.0)


async def causal(services: core.Services, model: str, call: Call) -> tuple[Values, dict[str, Any]]:
    """A causal LM's tensors and the response's parameters: its generation, or with `explain` its answers."""
    # The core names these fields from a v1 request's root; here they are parameters.
    with within_field("generate", "parameters.generate"):
        if call.explain is None:
            generated = await core.predict(services, model, call.field, call.inputs, top_k=1, generate=call.generate)
            assert isinstance(generated, Generated)
            return generation(generated), {"generate": asdict(generated.generation)}
        spec = call.explain
        assert isinstance(spec, CausalExplainParameter)
        prefix = "parameters.explain"
        with within_field("method", f"{prefix}.method"), within_field("target", f"{prefix}.target"):
            explained = await core.explain(
                services,
                model,
                call.field,
                call.inputs,
                [spec.method],
                target=list(spec.target) if isinstance(spec.target, list) else spec.target,
                generate=call.generate,
                include_generated=spec.include_generated,
            )
    assert isinstance(explained, AnswersExplained)
    answers = [a.answer.text for a in explained.answered]
    echo = {
        "method": explained.methods[0],
        "target": "predicted" if explained.generated else answers,
        "generated": explained.generated,
        "include_generated": spec.include_generated,
    }
    return answered(explained), {"explain": echo}


def generation(result: Generated) -> Values:
    """`token_ids` [N, G], `log_probs` [N, G], `text` [N] (decoded as v1's, special tokens left out) and
    `prompt_ids` [N, P]."""
    continuations = result.continuations
    return {
        "token_ids": ids([c.ids for c in continuations]),
        "log_probs": padded([np.array(c.log_probs, np.float32) for c in continuations], 0.0),
        "text": strings([answer_of_ids(result.tokenizer, c.ids).text for c in continuations]),
        "prompt_ids": ids([p.ids for p in result.prompts]),
    }


def answered(result: AnswersExplained) -> Values:
    """`prompt_ids` [N, P], `answer_ids` [N, K], `log_probs` [N, K], `scores` [N, K, S] (per answer token,
    v1's scores of the S scored tokens), `answer_scores` [N, S] (the whole answer's) and `text` [N]."""
    first = [per_method[0] for per_method in result.maps]
    per_token = [
        np.array(fields["scores"], np.float32).reshape(len(a.answer.ids), a.columns)
        for fields, a in zip(first, result.answered, strict=True)
    ]
    return {
        "prompt_ids": ids([a.prompt.ids for a in result.answered]),
        "answer_ids": ids([a.answer.ids for a in result.answered]),
        "log_probs": padded([np.array(lp, np.float32) for lp in result.log_probs], 0.0),
        "scores": padded(per_token, 0.0),
        "answer_scores": padded([np.array(fields["answer_scores"], np.float32) for fields in first], 0.0),
        "text": strings([a.answer.text for a in result.answered]),
    }
