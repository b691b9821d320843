"""Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability
for Interpreting Bi-Modal and Encoder-Decoder Transformers", self-attention rule).

Starting from R = I over the tokens, each block b in forward order updates R <- R + mean_h((dS/dA_b * A_b)^+) @ R,
A_b the block's attention probabilities and dS/dA_b the gradient of the target's score (the positive part is
taken per head, then heads are averaged, as the paper's reference code does). The map is the class token's
row of R over the patches (explainers/attention.py). One forward and one backward pass; class-specific.
"""

from __future__ import annotations

from torch import Tensor

from ..engine.plan import clean_rows
from .attention import attention_of, checked, identity, token_map
from .base import Capabilities, Cost, Explainer, Explanation, Params


class RelevanceParams(Params):
    pass


def relevance(attentions: list[Tensor], grads: list[Tensor]) -> Tensor:
    """(N, T, T) relevance from per-block (N, heads, T, T) attention probabilities and their gradients."""
    n, _, tokens, _ = attentions[0].shape
    result = identity(n, tokens, attentions[0])
    for attention, grad in zip(attentions, grads, strict=True):
        weighted = (grad.float() * attention).clamp(min=0).mean(dim=1)
        result = result + weighted @ result
    return result


class AttentionRelevance(Explainer):
    name = "attention_relevance"
    description = (
        "Relevance propagated through the blocks by the positive part of gradient x attention, averaged over "
        "heads (Chefer et al. 2021); transformer image models; one forward and one backward pass."
    )
    params_model = RelevanceParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="cam",
        reads_attention=True,
    )

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=1, backward=1)

    def plan(self, model, x, targets, params, ctx):
        info = attention_of(model, x, ctx, self.name)
        clean = yield from clean_rows(x, targets, attention="gradients")
        maps = checked(clean.attentions, info)
        return Explanation(token_map(relevance(maps, clean.attention_grads), info, x), clean.logits, clean.targets)
