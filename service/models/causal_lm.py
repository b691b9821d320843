"""Causal language models: a transformers AutoModelForCausalLM and its tokenizer as the engine's model.

Rows are a text model's (models/text.py): per token the embedding layer's values, then two features, a
role and the token id, `(T, D + 2)`. The role says what a token is to an explanation: 1 a token whose
scores are asked for (the prompt's), 2 a token the model reads but is not scored (the answer's, teacher
forced), 0 padding. The model attends to roles 1 and 2.

A pass returns, per row, a fixed-width vector (so passes of rows of different lengths concatenate):
    [0, L)      log p(token t | tokens before t) at each position t (0 at t = 0 and on padding)
    [L, L + V)  log p(next token | the row), at the row's last attended token
where L is the model's max_length and V its vocabulary. A target is a column: the log-probability of the
answer token at position t is column t, so gradients, integrated gradients and occlusion of one answer
token are those of a classifier's logit; generation reads the next-token columns.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from .kv_cache import cached_logits
from .loader import ModelLoadError
from .spec import ModelSpec
from .text import TextClassifier, load_pair, split

PROMPT, CONTEXT = 1.0, 2.0  # roles: scored and read; read only (0: padding)


class CausalLM(TextClassifier):
    """rows (N, T, D + 2) -> (N, L + V): per-position log-probabilities, then the next token's."""

    def __init__(self, model: nn.Module, layer_name: str, max_length: int):
        super().__init__(model, layer_name)
        self.max_length = max_length
        self.vocab_size = int(cast(Any, model).get_output_embeddings().weight.shape[0])

    def forward(self, rows: Tensor) -> Tensor:
        values, role, ids = split(rows)
        attended = (role > 0).long()
        self._local.values = values
        try:
            logits = self.model(input_ids=ids, attention_mask=attended, use_cache=False).logits
        finally:
            self._local.values = None
        return self.scores(logits.float(), ids, attended)

    def cached(self, rows: Tensor) -> Tensor:
        """Cached generation rows (models/kv_cache.py) -> (N, L + V) with the next token's log-probabilities
        (the per-position columns are 0: a step scores only what comes next)."""
        logits, new = cached_logits(self.model, rows)
        log_probs = logits.float().log_softmax(dim=-1)
        out = log_probs.new_zeros((len(rows), self.max_length + self.vocab_size))
        last = (new.sum(dim=1) - 1).clamp_min(0)
        out[:, self.max_length :] = log_probs[torch.arange(len(rows), device=rows.device), last]
        return out

    def scores(self, logits: Tensor, ids: Tensor, attended: Tensor) -> Tensor:
        n, length = ids.shape
        log_probs = logits.log_softmax(dim=-1)  # (N, T, V)
        per_position = log_probs[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2) * attended[:, 1:]
        out = logits.new_zeros((n, self.max_length + self.vocab_size))
        out[:, 1:length] = per_position
        last = (attended.sum(dim=1) - 1).clamp_min(0)
        out[:, self.max_length :] = log_probs[torch.arange(n, device=ids.device), last]
        return out

    def next_token(self, out: Tensor) -> Tensor:
        """(N, V) log p(next token) from a pass's outputs."""
        return out[:, self.max_length :]


def load(spec: ModelSpec) -> tuple[nn.Module, Any]:
    """(the transformers causal LM in eval mode, its fast tokenizer), on the CPU; nothing is downloaded."""
    model, tokenizer = load_pair(spec, "AutoModelForCausalLM", "language model")
    head = getattr(model, "get_output_embeddings", None)
    if not callable(head) or head() is None:
        raise ModelLoadError("the model has no language-model head (get_output_embeddings): not a causal LM")
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions is not None and spec.max_length > positions:
        raise ModelLoadError(f"max_length {spec.max_length} is over the model's {positions} positions")
    return model.eval(), tokenizer


def pad_id(tokenizer: Any) -> int:
    """The token that fills padding and ablated prompt tokens: the pad token, else end-of-sequence (GPT-2
    has no pad token), else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
