"""Vanilla gradient (Simonyan et al. 2013): dS/dx."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Capabilities, Cost, ExplainContext, Explainer, Explanation, Params, chunks, input_gradients


class GradientParams(Params):
    pass


def gradients_with_logits(
    model: nn.Module, x: Tensor, targets: Tensor | None, ctx: ExplainContext
) -> tuple[Tensor, Tensor, Tensor]:
    """dS/dx for every row, in chunks; the logits come from the same forward the backward uses."""
    logits, resolved, grads = [], [], []
    for start, stop in chunks(len(x), ctx.chunk_size):
        out, t, g = input_gradients(
            model, x[start:stop], None if targets is None else targets[start:stop], ctx.objective
        )
        logits.append(out)
        resolved.append(t)
        grads.append(g)
    return torch.cat(logits), torch.cat(resolved), torch.cat(grads)


class Gradient(Explainer):
    name = "gradient"
    description = "Gradient of the target score with respect to the input pixels (Simonyan et al. 2013)."
    params_model = GradientParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
    )

    def cost(self, params: Params, input_size: tuple[int, int]) -> Cost:
        return Cost(forward=1, backward=1)

    def explain(self, model, x, targets, params, ctx) -> Explanation:
        logits, resolved, grads = gradients_with_logits(model, x, targets, ctx)
        return Explanation(grads, logits, resolved)
