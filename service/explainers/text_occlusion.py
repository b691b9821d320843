"""Occlusion over tokens: each window of the user's tokens replaced by the pad (or mask) token, forward only.

A token's score is the mean, over the windows covering it, of S(text) - S(text with the window replaced);
with the default window of one token, simply the drop in the score without that token. Special tokens and
padding are never replaced and score 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from ..engine.plan import PassOutput, Plan, Rows, clean_rows
from .base import Explanation, Params
from .text_space import TextSpace


class TextOcclusionParams(Params):
    window: int = Field(1, ge=1, le=4096, description="Tokens replaced together.")
    stride: int = Field(1, ge=1, le=4096, description="Step between window starts, in tokens.")
    baseline: Literal["pad", "mask"] = Field("pad", description="The token that replaces the window's tokens.")


def token_windows(real: Tensor, window: int, stride: int) -> tuple[Tensor, Tensor]:
    """(text index (R,), token mask (R, T)) of every window that holds at least one of the text's own tokens."""
    length = real.shape[1]
    starts = torch.arange(0, max(length - window, 0) + stride, stride, device=real.device)
    positions = torch.arange(length, device=real.device)
    spans = (positions >= starts[:, None]) & (positions < starts[:, None] + window)  # (W, T)
    masks = spans[None] & real[:, None]  # (N, W, T)
    keep = masks.any(dim=2)
    texts = torch.arange(len(real), device=real.device)[:, None].expand_as(keep)
    return texts[keep], masks[keep]


def token_occlusion(x: Tensor, targets: Tensor, params: TextOcclusionParams, space: TextSpace) -> Plan:
    clean = yield from clean_rows(x, targets)
    resolved, score_x = clean.targets, clean.scores
    texts, masks = token_windows(space.real(x), params.window, params.stride)
    total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    coverage = torch.zeros_like(total).index_add_(0, texts, masks.to(x.dtype))

    def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
        chosen = texts[start:stop]
        return space.replaced(x[chosen], masks[start:stop], params.baseline), resolved[chosen]

    def consume(start: int, stop: int, out: PassOutput) -> None:
        chosen = texts[start:stop]
        total.index_add_(0, chosen, (score_x[chosen] - out.scores)[:, None] * masks[start:stop])

    if len(texts):
        yield Rows(len(texts), make_rows, consume)  # forward only
    return Explanation(total / coverage.clamp_min(1), clean.logits, resolved)
