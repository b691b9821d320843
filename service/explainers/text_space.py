"""What "absence of signal" and "noise" mean for text rows (token embeddings + attention mask + token id).

Special tokens ([CLS], [SEP]) and padding keep their values in every baseline and take no noise: the
methods score the user's tokens, as Captum's text tutorials do with their reference token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .postprocess import Reduce

TextBaseline = Literal["pad", "mask", "zero"]


@dataclass(frozen=True)
class TextSpace:
    pad: Tensor  # (D,) the pad token's value at the attributed layer
    mask_token: Tensor | None  # (D,) the mask token's, when the tokenizer has one
    special_ids: Tensor  # (S,) ids of special tokens

    def values(self, x: Tensor) -> Tensor:
        return x[..., :-2]

    def lengths(self, x: Tensor) -> list[int]:
        """Each text's own length: its tokens before the padding."""
        return [int(n) for n in (x[..., -2] > 0).sum(dim=1)]

    def real(self, x: Tensor) -> Tensor:
        """(N, T) the user's tokens: attended to and scored, and not special. A causal LM's answer tokens are
        attended to but not scored (role 2, models/causal_lm.py): no baseline or noise replaces them."""
        ids, mask = x[..., -1].round().long(), x[..., -2]
        return (mask == 1) & ~torch.isin(ids, self.special_ids.to(ids.device))

    def replaced(self, x: Tensor, where: Tensor, kind: TextBaseline) -> Tensor:
        """x with the values of the tokens in `where` (N, T) replaced by the baseline token's."""
        if kind == "mask" and self.mask_token is None:
            raise ValueError("the tokenizer has no mask token")
        token = {"pad": self.pad, "mask": self.mask_token, "zero": torch.zeros_like(self.pad)}[kind]
        assert token is not None
        out = x.clone()
        values = out[..., :-2]
        values[:] = torch.where(where[..., None], token.to(x), values)
        return out

    def baseline(self, kind: TextBaseline, x: Tensor) -> Tensor:
        """Every user token replaced; special tokens, mask and ids kept (what Captum's LayerIntegratedGradients
        computes for baseline ids with the special tokens left in place)."""
        return self.replaced(x, self.real(x), kind)

    def spread(self, x: Tensor) -> Tensor:
        """(N,) standard deviation of the user's tokens' values: what SmoothGrad's noise is a fraction of."""
        real = self.real(x)[..., None].expand_as(self.values(x))
        values = self.values(x)
        out = torch.stack([v[r].std() if r.sum() > 1 else v.new_zeros(()) for v, r in zip(values, real, strict=True)])
        return out.nan_to_num(0.0)

    def noise_mask(self, x: Tensor) -> Tensor:
        """(N, T, D + 2): which features take noise (the user's tokens' values only)."""
        where = torch.zeros_like(x, dtype=torch.bool)
        where[..., :-2] = self.real(x)[..., None]
        return where


def token_scores(attributions: Tensor, how: Reduce) -> Tensor:
    """(N, T) per-token scores: occlusion gives them; layer attributions (N, T, D + 2) reduce over D."""
    if attributions.dim() == 2:
        return attributions
    values = attributions[..., :-2]  # the mask and id features are not the text
    if how == "sum":
        return values.sum(dim=-1)
    if how == "sum_abs":
        return values.abs().sum(dim=-1)
    if how == "max_abs":
        return values.abs().amax(dim=-1)
    if how == "l2":
        return values.norm(dim=-1)
    return values  # "none": (N, T, D)
