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
from ..models.layers import cam_layers
from ..models.layouts import Layout, declared, infer, to_maps
from .base import Capabilities, Cost, ExplainContext, Explainer, Explanation, Params


class CamParams(Params):
    layer: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Module name from model.named_modules() (the model's layers and their layouts: GET "
        "/v1/models/{name}); default: the model's configured layer, else for a transformer its last block "
        "(where only the class token leaves it, the block's first norm), else the last (N, C, H, W) layer.",
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
        layer, layout = cam_layer(model, x, params, ctx)
        out = yield from clean_rows(x, targets, layers=(layer,))
        maps, layout = feature_maps(model, out, layer, layout, x)
        grads = to_maps(out.layer_grads[layer], layout)
        return Explanation(upsampled(self.weighted(maps, grads).sum(dim=1), x), out.logits, out.targets)


def cam_layer(model: nn.Module, x: Tensor, params: CamParams, ctx: ExplainContext) -> tuple[str, Layout | None]:
    """The layer a CAM method hooks and the layout of its output: the request's layer, the model's, else
    the default found by probing the model (scripts: a served model knows its layers from load). None:
    a named layer of a model not probed, whose layout `feature_maps` reads off its output."""
    layouts, refused, layer = ctx.layouts, ctx.refused_layers, params.layer or ctx.layer
    if not layouts and layer is None:
        table = cam_layers(model, x[:1])
        layouts, refused, layer = table.layouts, table.refused, table.default
    if layer is None:
        raise InvalidParameter("the model has no layer whose output is a feature map", field="method.layer")
    find_module(model, layer)  # an unknown name is the client's error, before any pass
    if layouts and layer not in layouts:
        why = refused.get(layer, "its output is not a tensor of feature maps")
        raise InvalidParameter(f"layer {layer!r} cannot be a CAM layer: {why}", field="method.layer")
    return layer, layouts.get(layer)


def feature_maps(
    model: nn.Module, out: PassOutput, layer: str, layout: Layout | None, x: Tensor
) -> tuple[Tensor, Layout]:
    """The layer's output as (N, K, h, w) maps, from a pass that recorded it, and its layout."""
    activations = out.activations.get(layer)
    if activations is None:
        raise InvalidParameter(f"layer {layer!r} outputs no tensor", field="method.layer")
    if layout is None:
        found = infer(find_module(model, layer), tuple(activations.shape), (x.shape[-2], x.shape[-1]), declared(model))
        if isinstance(found, str) and found.startswith("both"):  # the layers before it tell (a probe pass)
            found = cam_layers(model, x[:1]).layouts.get(layer, found)
        if isinstance(found, str):
            raise InvalidParameter(f"layer {layer!r} cannot be a CAM layer: {found}", field="method.layer")
        layout = found
    if activations.shape[1:] != recorded_shape(layout):
        raise InvalidParameter(f"layer {layer!r} did not output the maps it did at load", field="method.layer")
    return to_maps(activations, layout), layout


def recorded_shape(layout: Layout) -> tuple[int, ...]:
    """The output shape (batch aside) of a layer of this layout."""
    (h, w), c = layout.grid, layout.channels
    if layout.kind == "tokens":
        return (layout.prefix + h * w, c)
    return (c, h, w) if layout.kind == "nchw" else (h, w, c)


def upsampled(cam: Tensor, x: Tensor) -> Tensor:
    """ReLU of an (N, h, w) map, bilinearly resized to the input's (N, H, W) (what cv2.resize does too)."""
    return F.interpolate(F.relu(cam)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
