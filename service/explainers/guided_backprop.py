"""Guided Backpropagation (Springenberg et al. 2015): dS/dx with only positive gradients through each ReLU.

Known to show the same crisp edges for a trained and a randomized network (Adebayo et al. 2018): it is an
edge detector as much as an explanation. Served for comparison and for the sanity checks that reveal it.
Needs every ReLU of the model to be an nn.ReLU module (a ReLU applied as a function cannot be reached): the
core answers 422 for other models.
"""

from __future__ import annotations

from ..engine.plan import pass_over
from .base import Capabilities, Cost, Explainer, Explanation, Params


class GuidedBackpropParams(Params):
    pass


class GuidedBackprop(Explainer):
    name = "guided_backprop"
    description = "Gradient with only positive gradients passed back through each ReLU (Springenberg et al. 2015)."
    params_model = GuidedBackpropParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
        guided_relu=True,
    )

    def cost(self, params: Params, input_shape: tuple[int, ...]) -> Cost:
        return Cost(forward=1, backward=1)

    def plan(self, model, x, targets, params, ctx):
        # Its own pass, not the request's shared clean rows: its backward is not the plain gradient.
        out = yield from pass_over(x, targets, input_grad=True, guided=True)
        return Explanation(out.grads, out.logits, out.targets)
