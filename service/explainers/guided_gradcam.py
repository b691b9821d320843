"""Guided Grad-CAM (Selvaraju et al. 2017): Guided Backprop's map times the upsampled Grad-CAM map."""

from __future__ import annotations

from ..engine.plan import pass_over
from .base import Capabilities, Cost, Explanation
from .cam import CamExplainer
from .gradcam import GradCam


class GuidedGradCam(CamExplainer):
    name = "guided_gradcam"
    description = "Guided Backprop times Grad-CAM upsampled to the input: fine detail where the CAM points."
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=True,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
        guided_relu=True,
    )
    channel_weights = GradCam.channel_weights

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=2, backward=2)

    def plan(self, model, x, targets, params, ctx):
        cam = yield from super().plan(model, x, targets, params, ctx)  # (N, H, W), bilinear
        guided = yield from pass_over(x, cam.targets, input_grad=True, guided=True)
        return Explanation(guided.grads * cam.attributions[:, None], cam.logits, cam.targets)
