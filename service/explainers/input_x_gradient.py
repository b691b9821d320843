"""Input x gradient: x * dS/dx (first-order Taylor contribution of each input)."""

from __future__ import annotations

from .base import Capabilities, Explanation
from .gradient import Gradient, gradients_with_logits


class InputXGradient(Gradient):
    name = "input_x_gradient"
    description = "The input times the gradient of the target score: each pixel's first-order contribution."
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=True,
        output="pixel",
    )

    def explain(self, model, x, targets, params, ctx) -> Explanation:
        logits, resolved, grads = gradients_with_logits(model, x, targets, ctx)
        return Explanation(x * grads, logits, resolved)
