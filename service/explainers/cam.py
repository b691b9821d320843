"""Shared machinery of the class-activation-map methods: hook the layer, take dS/dA, weight, upsample.

A subclass only says how the channel weights come from the activations A and gradients dS/dA.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..errors import InvalidParameter
from .base import Capabilities, Cost, Explainer, Explanation, Params, chunks, resolve, score
from .hooks import capture_outputs, find_module, spatial_layers


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

    def cost(self, params, input_size) -> Cost:
        return Cost(forward=1, backward=1)

    def explain(self, model, x, targets, params, ctx) -> Explanation:
        layer = params.layer or ctx.layer or spatial_layers(model, x[:1])[-1][0]
        module = find_module(model, layer)
        logits, resolved, cams = [], [], []
        with capture_outputs(module) as outputs, torch.enable_grad():
            for start, stop in chunks(len(x), ctx.chunk_size):
                # The input requires grad so A is in the graph even when the model's weights are frozen.
                out = model(x[start:stop].detach().requires_grad_(True))
                if not outputs or outputs[-1].dim() != 4:
                    raise InvalidParameter(
                        f"layer {layer!r} does not output (N, C, H, W) feature maps", field="method.layer"
                    )
                activations = outputs[-1]
                outputs.clear()
                t = resolve(out, None if targets is None else targets[start:stop])
                (grads,) = torch.autograd.grad(score(out, t, ctx.objective).sum(), activations)
                weights = self.channel_weights(activations.detach(), grads)
                cam = F.relu((weights[:, :, None, None] * activations.detach()).sum(dim=1, keepdim=True))
                cams.append(F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0])
                logits.append(out.detach())
                resolved.append(t)
        return Explanation(torch.cat(cams), torch.cat(logits), torch.cat(resolved))
