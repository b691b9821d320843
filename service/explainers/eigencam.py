"""Eigen-CAM (Muhammad & Yeasin 2020): the layer's activations projected on their first principal component.

Per image, the (h*w, K) matrix of activations is centred per channel and projected on the first right
singular vector; the map is ReLU of that projection, upsampled as every CAM. It needs one forward pass, no
gradient and no target: the map is the same whatever class is explained.

A singular vector's sign is arbitrary, and with the ReLU it decides which half of the map shows. We take
numpy's, as pytorch-grad-cam 1.5.7 does (`get_2d_projection`), computed on the same float32 arrays, so the two
show the same half. We ask numpy for the reduced SVD: the same first singular vector as pytorch-grad-cam's
full one (tested), without its (h*w)^2 matrix U, which for an early layer of a large input would be gigabytes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..engine.plan import clean_rows
from .base import Capabilities, Cost, Explainer, Explanation
from .cam import CamParams, cam_layer, feature_maps, upsampled


def first_component(activations: Tensor) -> Tensor:
    """(N, K, h, w) -> (N, h, w): each position's centred activations projected on the first component."""
    batch = activations.detach().float().cpu().numpy().copy()
    batch[np.isnan(batch)] = 0
    projections = []
    for maps in batch:
        positions = maps.reshape(maps.shape[0], -1).transpose()  # (h*w, K)
        centred = positions - positions.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projections.append((centred @ vt[0, :]).reshape(maps.shape[1:]))
    return torch.from_numpy(np.stack(projections).astype(np.float32)).to(activations.device)


class EigenCam(Explainer):
    name = "eigencam"
    description = (
        "The layer's activations projected on their first principal component (Muhammad & Yeasin 2020); "
        "one forward pass, no gradients, the same map for every class."
    )
    params_model = CamParams
    capabilities = Capabilities(
        needs_gradients=False,
        uses_layer=True,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="cam",
        uses_target=False,
        modalities=("image", "detection"),
    )

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=1, backward=0)

    def plan(self, model, x, targets, params, ctx):
        layer, layout = cam_layer(model, x, params, ctx)
        clean = yield from clean_rows(x, targets, activations=(layer,))
        maps, _ = feature_maps(model, clean, layer, layout, x)
        return Explanation(upsampled(first_component(maps), x), clean.logits, clean.targets)
