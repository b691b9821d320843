"""Score-CAM (Wang et al. 2020), as pytorch-grad-cam 1.5.7 computes it: no gradients, one pass per channel.

Each channel A_k of the layer, upsampled to the input (bilinear, align_corners=True, as pytorch-grad-cam's
UpsamplingBilinear2d) and min-max scaled to [0, 1], masks the input: x * mask, in model-input space. The
channel's weight is the softmax over channels of S(x * mask_k), S the request's objective of the target class
(pytorch-grad-cam's ClassifierOutputTarget is the logit, our default; the paper used the probability). The
map is ReLU(sum_k w_k A_k), upsampled as every CAM. Unlike the paper, no baseline score is subtracted: a
constant shift of the scores does not change their softmax. The masked inputs are forward-only rows, built
chunk by chunk, so memory does not grow with the channel count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine.plan import PassOutput, Rows, clean_rows
from .base import Capabilities, Cost, Explainer, Explanation
from .cam import CamParams, cam_layer, feature_maps, upsampled

EPS = 1e-8  # pytorch-grad-cam's stabiliser of the min-max scaling, kept so the two agree


def channel_masks(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(n, h, w) channel maps -> (n, 1, H, W) masks in [0, 1]."""
    up = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=True)
    flat = up.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    return (up - low.view(-1, 1, 1, 1)) / (high - low + EPS).view(-1, 1, 1, 1)


class ScoreCam(Explainer):
    name = "scorecam"
    description = (
        "Channels weighted by the softmax of the scores of the input masked by each channel (Wang et al. 2020); "
        "one forward pass per channel of the layer, no gradients."
    )
    params_model = CamParams
    capabilities = Capabilities(
        needs_gradients=False,
        uses_layer=True,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="cam",
    )

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=1, backward=0, driver="layer", forward_per_channel=1)

    def plan(self, model, x, targets, params, ctx):
        layer, layout = cam_layer(model, x, params, ctx)
        clean = yield from clean_rows(x, targets, activations=(layer,))
        activations, _ = feature_maps(model, clean, layer, layout, x)
        resolved, k = clean.targets, activations.shape[1]
        scores = torch.zeros(len(x) * k, device=x.device)  # row i: image i // k masked by channel i % k

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            rows = torch.arange(start, stop, device=x.device)
            images = rows // k
            masks = channel_masks(activations[images, rows % k], (x.shape[2], x.shape[3]))
            return x[images] * masks.to(x.dtype), resolved[images]

        def consume(start: int, stop: int, out: PassOutput) -> None:
            scores[start:stop] = out.scores.float()

        yield Rows(len(x) * k, make_rows, consume)  # forward only
        weights = scores.view(len(x), k).softmax(dim=1)
        cam = (weights[:, :, None, None] * activations.float()).sum(dim=1)
        return Explanation(upsampled(cam, x), clean.logits, resolved)
