"""Texts: strings in, token-embedding rows to the engine, per-token scores (and highlighted HTML) out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import InvalidInput, PayloadTooLarge
from ...explainers import Explainer, Explanation
from ...explainers.postprocess import Reduce
from ...explainers.text_space import token_scores
from ...models import LoadedModel
from ...models.text import token_rows
from ...settings import Settings
from ..base import Batch, Codec
from ..options import OutputOptions
from .render import defaults, render


class TextCodec(Codec):
    kind = "text"
    field = "texts"

    def admit(
        self,
        raw: Sequence[Any],
        loaded: LoadedModel,
        settings: Settings,
        methods: list[Explainer],
        output: OutputOptions | None,
    ) -> list[str]:
        if len(raw) > settings.max_texts:
            raise InvalidInput(f"{len(raw)} texts, over the limit of {settings.max_texts}", "texts")
        for i, text in enumerate(raw):
            if not isinstance(text, str):
                raise InvalidInput("a text must be a string", f"texts.{i}")
            if not text.strip():
                raise InvalidInput("empty text", f"texts.{i}")
            if len(text) > settings.max_text_chars:
                raise PayloadTooLarge(
                    f"text is {len(text)} characters, over the limit of {settings.max_text_chars}", f"texts.{i}"
                )
        return list(raw)

    def decode(self, admitted: list[str], loaded: LoadedModel, settings: Settings, output: OutputOptions | None):
        """Tokens (padded to the longest text) as token rows; their values at the attributed layer are the
        device thread's to compute (service.core.plans.model_rows)."""
        limit = loaded.spec.max_length
        encoded = loaded.tokenizer(
            admitted,
            padding=True,
            truncation=False,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        for i, length in enumerate(mask.sum(dim=1).tolist()):
            if length > limit:
                raise InvalidInput(f"text is {length} tokens, over model's limit of {limit}", f"texts.{i}")
        items = []
        for i, text in enumerate(admitted):
            length = int(mask[i].sum())
            items.append(
                {
                    "text": text,
                    "ids": ids[i, :length].tolist(),
                    "tokens": loaded.tokenizer.convert_ids_to_tokens(ids[i, :length].tolist()),
                    "offsets": encoded["offset_mapping"][i, :length].tolist(),
                    "special": encoded["special_tokens_mask"][i, :length].bool().tolist(),
                }
            )
        return Batch(token_rows(mask, ids), items)

    def render(self, batch: Batch, results: list[Explanation], explainers: list[Explainer], output: OutputOptions):
        return render(batch.items, results, explainers, output)

    def reduction(self, explainer: Explainer) -> Reduce:
        return defaults(explainer)[0]

    def scores(self, batch: Batch, result: Explanation, explainer: Explainer) -> list[np.ndarray]:
        per_token = token_scores(result.attributions.float(), self.reduction(explainer))
        return [per_token[i, : len(item["tokens"])].numpy() for i, item in enumerate(batch.items)]
