"""D-RISE (Petsiuk et al. 2021): a detector's map for a box, from random masks and forward passes only.

saliency_t = sum_i w_i(t) M_i / (N p), w_i(t) the affinity of target box t to the detections of the image
masked by M_i (models/detection.py: IoU x objectness x class cosine, of the best match), so a mask that keeps
what made the detector find the box weighs much. The masks are RISE's (rise.py: smooth, shifted, seeded per
mask index, black where masked), and one pass over a masked image scores every target box of that image at
once: the rows are masks, not masks x boxes. The division by N p, as RISE's, makes the map an expectation
(the paper sums; the two differ by a constant).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from pydantic import Field
from torch import Tensor

from ..engine.plan import PassOutput, Rows
from .base import Cost, Explainer, Explanation, Params
from .baselines import make_baseline
from .rise import Rise, row_masks


class DRiseParams(Params):
    masks: int = Field(1000, ge=1, le=16384, description="Random masks (one forward pass each, for all boxes).")
    cell: int = Field(16, ge=1, le=4096, description="Side of a mask cell, in input pixels.")
    p: float = Field(0.5, gt=0.0, le=1.0, description="Probability that a cell is kept.")
    seed: int = Field(0, ge=0, le=2**40, description="Seed of the masks.")


class DRise(Explainer):
    name = "drise"
    description = (
        "A detected box's map: random masks weighted by how well the masked image's detections still match "
        "the box (Petsiuk et al. 2021); forward passes only."
    )
    params_model = DRiseParams
    capabilities = replace(Rise.capabilities, modalities=("detection",), boxes_per_row=True)

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=params.masks, backward=0, driver="masks")

    def plan(self, model, x, targets, params, ctx):
        """x (N, C, H, W) images, targets (N, B, 5) their boxes (label -1: none) -> attributions (N, B, C, H, W)."""
        k, (height, width) = params.masks, x.shape[2:]
        black = make_baseline("black", x, ctx.pixel_space)
        total = torch.zeros((len(x), targets.shape[1], height, width), dtype=x.dtype, device=x.device)
        made: dict[tuple[int, int], Tensor] = {}

        def masks_of(start: int, stop: int) -> Tensor:
            return row_masks(start, stop, k, (height, width), params, x)

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            images = torch.arange(start, stop, device=x.device) // k
            masks = made[start, stop] = masks_of(start, stop)
            return masks * x[images] + (1 - masks) * black[images], targets[images]

        def consume(start: int, stop: int, out: PassOutput) -> None:
            images = torch.arange(start, stop, device=x.device) // k
            masks = made.pop((start, stop), None)
            masks = masks_of(start, stop) if masks is None else masks
            total.index_add_(0, images, out.scores[:, :, None, None] * masks)  # (n, B) x (n, 1, H, W)

        yield Rows(len(x) * k, make_rows, consume)  # forward only
        maps = (total / (k * params.p))[:, :, None].expand(-1, -1, x.shape[1], -1, -1)
        return Explanation(maps, torch.zeros((len(x), 0)), targets)
