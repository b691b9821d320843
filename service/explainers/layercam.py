"""LayerCAM (Jiang et al. 2021): every position weighted by its own positive gradient, ReLU(dS/dA) * A."""

from __future__ import annotations

from torch import Tensor

from .cam import CamExplainer


class LayerCam(CamExplainer):
    name = "layercam"
    description = "Activations weighted position by position by their positive gradients (Jiang et al. 2021)."

    def channel_weights(self, activations: Tensor, grads: Tensor) -> Tensor:
        raise NotImplementedError("LayerCAM weighs positions, not channels: see weighted()")

    def weighted(self, activations: Tensor, grads: Tensor) -> Tensor:
        return grads.clamp_min(0) * activations
