"""A causal LM's texts as token ids, light to import: what the core holds of a prompt and its answer (the
codec, codecs/text/causal.py, is imported only when a causal LM is served, as the text codec is)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models import LoadedModel
from ..models.causal_lm import pad_id


@dataclass(frozen=True)
class Tokenized:
    text: str
    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int] | None]  # None for special tokens
    special: list[bool]


@dataclass(frozen=True)
class Answered:
    """A text as explained: its prompt, its answer, and its rows (one per answer token) in the results."""

    prompt: Tokenized
    answer: Tokenized
    rows: tuple[int, int]
    include_generated: bool

    @property
    def columns(self) -> int:
        """The tokens scored per answer token: the prompt's, and the answer's with include_generated."""
        return len(self.prompt.ids) + (len(self.answer.ids) if self.include_generated else 0)


def token_rows(ids: list[list[int]], roles: list[list[float]], loaded: LoadedModel) -> torch.Tensor:
    """(N, T, 2) of (role, id) per token, padded on the right with the pad token in role 0."""
    longest = max(len(i) for i in ids)
    out = torch.zeros((len(ids), longest, 2))
    out[..., 1] = pad_id(loaded.tokenizer)
    for row, (these, role) in enumerate(zip(ids, roles, strict=True)):
        out[row, : len(these), 0] = torch.tensor(role)
        out[row, : len(these), 1] = torch.tensor(these, dtype=torch.float32)
    return out
