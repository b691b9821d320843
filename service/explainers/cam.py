"""Shared machinery of the class-activation-map methods: hook the layer, take dS/dA, weight, upsample.

A subclass only says how the channel weights come from the activations A and gradients dS/dA.
"""

from __future__ import annotations

from abc import abstractmethod

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..engine.hooks import find_module
from ..engine.plan import PassOutput, clean_rows
from ..errors import InvalidParameter
from ..models.layers import spatial_layers
from .base import Capabilities, Cost, ExplainContext, Explainer, Explanation, Params


class CamParams(Params):
    layer: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Module name from model.named_modules(); default: the model's configured layer, else "
        "the last module to finish whose output is 4-D with spatial size > 1.",
    )


class CamExplainer(Explainer):
    params_model = CamParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=True,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="cam",
    )

    @abstractmethod
    def channel_weights(self, activations: Tensor, grads: Tensor) -> Tensor:
        """(N, K, h, w), (N, K, h, w) -> (N, K)."""

    def weighted(self, activations: Tensor, grads: Tensor) -> Tensor:
        """(N, K, h, w): the activations weighted per channel (per position in LayerCAM)."""
        return self.channel_weights(activations, grads)[:, :, None, None] * activations

    def cost(self, params, input_size) -> Cost:
        return Cost(forward=1, backward=1)

    def plan(self, model, x, targets, params, ctx):
        layer = cam_layer(model, x, params, ctx)
        out = yield from clean_rows(x, targets, layers=(layer,))
        weighted = self.weighted(feature_maps(out, layer), out.layer_grads[layer])
        return Explanation(upsampled(weighted.sum(dim=1), x), out.logits, out.targets)


def cam_layer(model: nn.Module, x: Tensor, params: CamParams, ctx: ExplainContext) -> str:
    """The layer a CAM method hooks: the request's, the model's, else the last spatial one."""
    layer = params.layer or ctx.layer or spatial_layers(model, x[:1])[-1][0]
    find_module(model, layer)  # an unknown name is the client's error, before any pass
    return layer


def feature_maps(out: PassOutput, layer: str) -> Tensor:
    """The layer's (N, K, h, w) output from a pass that recorded it."""
    activations = out.activations.get(layer)
    if activations is None or activations.dim() != 4:
        raise InvalidParameter(f"layer {layer!r} does not output (N, C, H, W) feature maps", field="method.layer")
    return activations


def upsampled(cam: Tensor, x: Tensor) -> Tensor:
    """ReLU of an (N, h, w) map, bilinearly resized to the input's (N, H, W) (what cv2.resize does too)."""
    return F.interpolate(F.relu(cam)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
