"""Vanilla gradient (Simonyan et al. 2013): dS/dx."""

from __future__ import annotations

from ..engine.plan import clean_rows
from .base import Capabilities, Cost, Explainer, Explanation, Params


class GradientParams(Params):
    pass


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
        modalities=("image", "text", "detection", "causal_lm"),
    )

    def cost(self, params: Params, input_shape: tuple[int, ...]) -> Cost:
        return Cost(forward=1, backward=1)

    def plan(self, model, x, targets, params, ctx):
        # The prediction comes from the same forward the backward uses.
        out = yield from clean_rows(x, targets, input_grad=True)
        return Explanation(out.grads, out.logits, out.targets)
