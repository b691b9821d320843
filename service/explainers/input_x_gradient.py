"""Input x gradient: x * dS/dx (first-order Taylor contribution of each input)."""

from __future__ import annotations

from ..engine.plan import clean_rows
from .base import Capabilities, Explanation
from .gradient import Gradient


class InputXGradient(Gradient):
    name = "input_x_gradient"
    description = "The input times the gradient of the target score: each pixel's first-order contribution."
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=True,
        output="pixel",
        modalities=("image", "text", "causal_lm"),
    )

    def plan(self, model, x, targets, params, ctx):
        out = yield from clean_rows(x, targets, input_grad=True)
        return Explanation(x * out.grads, out.logits, out.targets)
