"""RISE (Petsiuk et al. 2018): saliency = sum_i S(x masked by M_i) M_i / (N p), forward passes only.

Each mask M_i is a grid of cells, each kept with probability p, upsampled bilinearly to (cells + 1) * cell
pixels and cropped at a random shift within one cell, so the masks are smooth and not aligned to the grid.
A masked pixel shows the black baseline: M x + (1 - M) black, in model-input space (RISE multiplies the
picture by the mask). Mask i comes from its own generator (seed, i), so a map does not depend on the chunk
size or on the other images of its batch, and one seed gives the same masks for every image.
S is the request's objective of the target class; with objective "probability" this is RISE's definition.

The default of 1000 masks, measured on the demo `shapes` model (4 fresh images, objective probability): the
map's correlation with a 4000-mask map is 0.54 at 125 masks, 0.70 at 500, 0.86 at 1000 and 0.95 at 2000. 1000
fits the default max_passes_per_image (1100); raise both for smoother maps (the paper used 4000-8000 on
ImageNet).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..engine.plan import PassOutput, Rows, clean_rows
from .base import Capabilities, Cost, Explainer, Explanation, Params
from .baselines import make_baseline

SEED_STRIDE = 1_000_003  # keeps the generators of two requests' seeds apart for any mask count


class Masking(Protocol):
    """What the masks depend on (RISE's and D-RISE's parameters)."""

    cell: int
    p: float
    seed: int


class RiseParams(Params):
    masks: int = Field(1000, ge=1, le=16384, description="Random masks (one forward pass each).")
    cell: int = Field(12, ge=1, le=4096, description="Side of a mask cell, in input pixels.")
    p: float = Field(0.5, gt=0.0, le=1.0, description="Probability that a cell is kept.")
    seed: int = Field(0, ge=0, le=2**40, description="Seed of the masks.")


def rise_masks(first: int, stop: int, height: int, width: int, params: Masking, device: torch.device) -> Tensor:
    """Masks first..stop-1, (n, 1, H, W) in [0, 1]."""
    cells_h, cells_w = math.ceil(height / params.cell), math.ceil(width / params.cell)
    out = []
    for i in range(first, stop):
        generator = torch.Generator().manual_seed(params.seed * SEED_STRIDE + i)
        grid = (torch.rand(1, 1, cells_h, cells_w, generator=generator) < params.p).float()
        up = F.interpolate(
            grid, size=((cells_h + 1) * params.cell, (cells_w + 1) * params.cell), mode="bilinear", align_corners=False
        )
        dy, dx = (int(v) for v in torch.randint(0, params.cell, (2,), generator=generator))
        out.append(up[0, :, dy : dy + height, dx : dx + width])
    return torch.stack(out).to(device)


def row_masks(start: int, stop: int, k: int, size: tuple[int, int], params: Masking, x: Tensor) -> Tensor:
    """The masks of rows start..stop-1, row r being image r // k's mask r % k, in x's dtype and device. Rows
    run image by image through the same masks: each run of mask indices is built once."""
    parts, row = [], start
    while row < stop:
        end = min(stop, (row // k + 1) * k)
        parts.append(rise_masks(row % k, row % k + end - row, *size, params, x.device))
        row = end
    return torch.cat(parts).to(x.dtype)


class Rise(Explainer):
    name = "rise"
    description = "Mean of random smooth masks weighted by the score of the masked input (Petsiuk et al. 2018)."
    params_model = RiseParams
    capabilities = Capabilities(
        needs_gradients=False,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
    )

    def cost(self, params, input_shape) -> Cost:
        return Cost(forward=params.masks + 1, backward=0, driver="masks")

    def plan(self, model, x, targets, params, ctx):
        clean = yield from clean_rows(x, targets)
        resolved = clean.targets
        black = make_baseline("black", x, ctx.pixel_space)
        height, width = x.shape[2:]
        k = params.masks
        total = torch.zeros((len(x), height, width), dtype=x.dtype, device=x.device)
        made: dict[tuple[int, int], Tensor] = {}  # a chunk's masks, from building its rows to consuming them

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            rows = torch.arange(start, stop, device=x.device)
            images = rows // k
            masks = made[start, stop] = masks_of(start, stop)
            return masks * x[images] + (1 - masks) * black[images], resolved[images]

        def masks_of(start: int, stop: int) -> Tensor:
            return row_masks(start, stop, k, (height, width), params, x)

        def consume(start: int, stop: int, out: PassOutput) -> None:
            images = torch.arange(start, stop, device=x.device) // k
            masks = made.pop((start, stop), None)
            masks = masks_of(start, stop) if masks is None else masks
            total.index_add_(0, images, out.scores.view(-1, 1, 1) * masks[:, 0])

        yield Rows(len(x) * k, make_rows, consume)  # forward only
        per_pixel = total / (k * params.p)
        return Explanation(per_pixel[:, None].expand_as(x).clone(), clean.logits, resolved)  # as occlusion's
