"""Grad-CAM++ (Chattopadhay et al. 2018), with the weights as pytorch-grad-cam computes them.

That form assumes an exponential output, so the higher-order derivatives reduce to powers of the
first-order gradient: a = g^2 / (2 g^2 + sum(A) g^3), w_k = sum_ij a_ij ReLU(g_ij).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cam import CamExplainer

EPS = 1e-6  # pytorch-grad-cam's stabiliser, kept so the two agree


class GradCamPlusPlus(CamExplainer):
    name = "gradcam_pp"
    description = "Grad-CAM++: pixel-weighted positive gradients, better for several instances of a class."

    def channel_weights(self, activations: Tensor, grads: Tensor) -> Tensor:
        g2 = grads.pow(2)
        sum_activations = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_activations * g2 * grads + EPS)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (alpha * grads.clamp_min(0)).sum(dim=(2, 3))
