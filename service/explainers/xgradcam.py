"""XGrad-CAM (Fu et al. 2020): channel weights sum(A * dS/dA) / sum(A), as pytorch-grad-cam computes them."""

from __future__ import annotations

from torch import Tensor

from .cam import CamExplainer

EPS = 1e-7  # pytorch-grad-cam's stabiliser, kept so the two agree


class XGradCam(CamExplainer):
    name = "xgradcam"
    description = "Grad-CAM with activation-normalised gradient weights, axiom-based (Fu et al. 2020)."

    def channel_weights(self, activations: Tensor, grads: Tensor) -> Tensor:
        total = activations.sum(dim=(2, 3), keepdim=True)
        return (grads * activations / (total + EPS)).sum(dim=(2, 3))
