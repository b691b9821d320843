"""A causal LM's texts: prompts (and the client's answers) in as token ids with character offsets; token
scores out as plain matrices (the core arranges them per answer token, service/core/causal.py).

Prompts are tokenized as the tokenizer does by default (its special tokens, if it adds any, are never
scored); an answer is tokenized without special tokens, as Captum's LLMAttribution tokenizes its target,
and its offsets are in the answer's own characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInput, InvalidTarget, PayloadTooLarge
from ...explainers import Explainer, Explanation
from ...explainers.text_space import token_scores
from ...models import LoadedModel
from ...settings import Settings
from ..base import Batch
from ..options import OutputOptions
from ..tokens import Answered, Tokenized, token_rows
from . import TextCodec
from .render import defaults, highlighted


class CausalCodec(TextCodec):
    kind = "causal_lm"

    def decode(self, admitted: list[str], loaded: LoadedModel, settings: Settings, output: OutputOptions | None):
        """Each prompt's token ids (items: Tokenized); x: (N, T, 2) token rows padded on the right."""
        items = [tokenize(loaded, text, True, f"texts.{i}") for i, text in enumerate(admitted)]
        return Batch(token_rows([item.ids for item in items], [[1.0] * len(item.ids) for item in items], loaded), items)

    def answers(self, targets: Sequence[Any], n: int, loaded: LoadedModel, settings: Settings) -> list[Tokenized]:
        """The client's continuations: one string for every prompt, or a list of one per prompt."""
        per_text = list(targets) if isinstance(targets, list) else [targets] * n
        if len(per_text) != n:
            raise InvalidTarget(f"{len(per_text)} targets for {n} texts", "target")
        out = []
        for i, text in enumerate(per_text):
            where = f"target.{i}" if isinstance(targets, list) else "target"
            if not isinstance(text, str) or not text:
                raise InvalidTarget("a causal LM's target is the continuation to explain, a non-empty string", where)
            if len(text) > settings.max_text_chars:
                raise PayloadTooLarge(f"target is {len(text)} characters, over {settings.max_text_chars}", where)
            tokenized = tokenize(loaded, text, False, where)
            if not tokenized.ids:
                raise InvalidTarget("the target has no tokens", where)
            out.append(tokenized)
        return out

    def render(self, batch: Batch, results: list[Explanation], explainers: list[Explainer], output: OutputOptions):
        """Per text, per method: `scores` (answer tokens x scored tokens), `answer_scores` (the whole answer's
        row: the attributions of its summed log-probability, which every method here is linear in) and
        per-answer-token diagnostics. batch.items are Answered (the prompt, the answer, their rows)."""
        rendered = []
        for index, item in enumerate(batch.items):
            assert isinstance(item, Answered)
            start, stop = item.rows
            per_method = []
            for result, explainer in zip(results, explainers, strict=True):
                how = output.reduce or defaults(explainer)[0]
                raw = result.attributions[start:stop].float()
                width = item.columns
                per_token = token_scores(raw, how)[:, :width]
                whole = token_scores(raw.sum(dim=0, keepdim=True), how)[0, :width]
                per_method.append(
                    {
                        "scores": per_token.tolist(),
                        "answer_scores": whole.tolist(),
                        "diagnostics": {k: v[start:stop].tolist() for k, v in result.diagnostics.items()},
                        "faithfulness": faithfulness(result, index) if result.faithfulness else None,
                        **(html(item, per_token, whole) if output.html else {}),
                    }
                )
            rendered.append(per_method)
        return rendered


def html(item: Answered, per_token, whole) -> dict[str, Any]:
    """The prompt highlighted by the whole answer's scores, and by each answer token's (text/render.py's
    colours: a diverging map, each picture scaled by its own largest score)."""
    prompt = item.prompt
    shown = {
        "text": prompt.text,
        "offsets": [where or (0, 0) for where in prompt.offsets],
        "special": prompt.special,
    }
    size = len(prompt.ids)
    return {
        "html": highlighted(shown, whole[:size].numpy(), True),
        "html_tokens": [highlighted(shown, row[:size].numpy(), True) for row in per_token],
    }


def faithfulness(result: Explanation, text: int) -> dict[str, dict[str, Any]]:
    """One text's deletion and insertion: AUCs and the curve of the answer's log-probability."""
    return {
        metric: {"auc": float(v["auc"][text]), "random_auc": float(v["random_auc"][text]),
                 "curve": v["curve"][text].tolist()}
        for metric, v in result.faithfulness.items()
    }  # fmt: skip


def tokenize(loaded: LoadedModel, text: str, special: bool, where: str) -> Tokenized:
    encoded = loaded.tokenizer(
        text, add_special_tokens=special, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    if len(ids) > loaded.spec.max_length:
        raise PayloadTooLarge(f"{len(ids)} tokens, over the model's max_length of {loaded.spec.max_length}", where)
    if special and not ids:
        raise InvalidInput("the prompt has no tokens", where)
    marks = [bool(m) for m in encoded.get("special_tokens_mask", [0] * len(ids))]
    offsets = [None if m else (int(a), int(b)) for (a, b), m in zip(encoded["offset_mapping"], marks, strict=True)]
    tokens = loaded.tokenizer.convert_ids_to_tokens(ids)
    return Tokenized(text, ids, tokens, offsets, marks)
