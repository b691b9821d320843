"""Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k w_k A_k), w_k the spatial mean of dS/dA_k."""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from .cam import CamExplainer


class GradCam(CamExplainer):
    name = "gradcam"
    description = "Layer activations weighted by their spatially averaged gradients (Selvaraju et al. 2017)."
    capabilities = replace(CamExplainer.capabilities, modalities=("image", "detection"))

    def channel_weights(self, activations: Tensor, grads: Tensor) -> Tensor:
        return grads.mean(dim=(2, 3))
