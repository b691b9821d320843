"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Per block, the heads' attention is fused (mean, max or min over heads), optionally the smallest
`discard_ratio` of its entries are set to zero (jacobgil/vit-explain's refinement; the class token's
attention to itself is kept), the residual connection is added and rows renormalised:
A' = (A + I) / 2, rows summing to 1. The rollout is the product over blocks, R = A'_L ... A'_1, and the map
the class token's row of R over the patches (explainers/attention.py). One forward pass, no gradients, the
same map for every class.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor

from ..engine.plan import clean_rows
from .attention import attention_of, checked, identity, token_map
from .base import Capabilities, Cost, Explainer, Explanation, Params


class RolloutParams(Params):
    head_fusion: Literal["mean", "max", "min"] = Field("mean", description="How the heads of a block are fused.")
    discard_ratio: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of each block's smallest fused attention set to 0 (paper: 0)."
    )


def fused(attention: Tensor, how: str) -> Tensor:
    """(N, heads, T, T) -> (N, T, T)."""
    if how == "mean":
        return attention.mean(dim=1)
    return attention.amax(dim=1) if how == "max" else attention.amin(dim=1)


def discarded(attention: Tensor, ratio: float) -> Tensor:
    """The smallest `ratio` of each map's entries set to 0, except entry (0, 0)."""
    if ratio == 0:
        return attention
    flat = attention.flatten(1).clone()
    smallest = flat.topk(int(flat.shape[1] * ratio), dim=1, largest=False).indices
    first = flat[:, 0].clone()
    flat.scatter_(1, smallest, 0.0)
    flat[:, 0] = first
    return flat.view_as(attention)


def rollout(attentions: list[Tensor], head_fusion: str, discard_ratio: float) -> Tensor:
    """(N, T, T) rollout of per-block (N, heads, T, T) attention probabilities."""
    n, _, tokens, _ = attentions[0].shape
    result = identity(n, tokens, attentions[0])
    eye = identity(1, tokens, attentions[0])
    for attention in attentions:
        a = (discarded(fused(attention, head_fusion), discard_ratio) + eye) / 2
        result = (a / a.sum(dim=-1, keepdim=True)) @ result
    return result


class AttentionRollout(Explainer):
    name = "attention_rollout"
    description = (
        "The class token's attention to the patches, rolled out through the blocks with their residual "
        "connections (Abnar & Zuidema 2020); transformer image models; one forward pass, the same map for every class."
    )
    params_model = RolloutParams
    capabilities = Capabilities(
        needs_gradients=False,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="cam",
        uses_target=False,
        reads_attention=True,
    )

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=1, backward=0)

    def plan(self, model, x, targets, params, ctx):
        info = attention_of(model, x, ctx, self.name)
        clean = yield from clean_rows(x, targets, attention="probabilities")
        relevance = rollout(checked(clean.attentions, info), params.head_fusion, params.discard_ratio)
        return Explanation(token_map(relevance, info, x), clean.logits, clean.targets)
