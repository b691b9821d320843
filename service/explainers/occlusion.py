"""Occlusion (Zeiler & Fergus 2014).

Per pixel, the mean over the windows covering it of S(x) - S(x with the window set to the baseline).
Windows start at multiples of the stride until one reaches the far edge (the last may be cut short), so
every pixel is covered. Windows of several images share forward chunks.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor

from ..engine.plan import PassOutput, Rows, clean_rows
from .base import Capabilities, Cost, Explainer, Explanation, Params
from .baselines import make_baseline
from .text_occlusion import TextOcclusionParams, token_occlusion


class OcclusionParams(Params):
    window: int = Field(16, ge=1, le=4096, description="Side of the square window, in input pixels.")
    stride: int = Field(8, ge=1, le=4096, description="Step between window starts, in input pixels.")
    baseline: Literal["zero", "black", "blur", "mean"] = Field(
        "zero",
        description="What fills the window: zero in model-input space, black pixels, the blurred "
        "input, or the image's mean colour.",
    )
    blur_sigma: float = Field(5.0, gt=0.0, le=100.0, description="Sigma in pixels of the blur baseline.")

    @field_validator("stride")
    @classmethod
    def _stride_within_window(cls, stride: int, info: ValidationInfo) -> int:
        # Windows start at multiples of the stride: a stride longer than the window leaves pixels uncovered.
        window = info.data.get("window")
        if window is not None and stride > window:
            raise ValueError(f"stride ({stride}) must not exceed window ({window})")
        return stride


def window_starts(size: int, window: int, stride: int) -> list[int]:
    return [i * stride for i in range(math.ceil(max(size - window, 0) / stride) + 1)]


def window_masks(height: int, width: int, params: OcclusionParams, device: torch.device) -> Tensor:
    """(n_windows, H, W) boolean masks, row-major over window positions."""

    def spans(size: int) -> Tensor:
        starts = torch.tensor(window_starts(size, params.window, params.stride), device=device)
        pos = torch.arange(size, device=device)
        return (pos >= starts[:, None]) & (pos < starts[:, None] + params.window)

    rows, cols = spans(height), spans(width)
    return (rows[:, None, :, None] & cols[None, :, None, :]).flatten(0, 1)


class Occlusion(Explainer):
    name = "occlusion"
    description = "Drop in the target score when a sliding window is replaced by a baseline (forward only)."
    params_model = OcclusionParams
    text_params_model = TextOcclusionParams
    capabilities = Capabilities(
        needs_gradients=False,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
        modalities=("image", "text", "causal_lm"),
    )

    def cost(self, params, input_size) -> Cost:
        n = 1
        for side in input_size:  # (H, W), or (tokens,) for a text
            n *= len(window_starts(side, params.window, params.stride))
        return Cost(forward=n + 1, backward=0, driver="stride")

    def plan(self, model, x, targets, params, ctx):
        if ctx.text is not None:
            return (yield from token_occlusion(x, targets, params, ctx.text))
        clean = yield from clean_rows(x, targets)
        resolved, score_x = clean.targets, clean.scores
        baseline = make_baseline(params.baseline, x, ctx.pixel_space, params.blur_sigma)
        masks = window_masks(x.shape[2], x.shape[3], params, x.device)
        k = len(masks)
        total = torch.zeros((len(x), *x.shape[2:]), dtype=x.dtype, device=x.device)

        def windows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            rows = torch.arange(start, stop, device=x.device)
            return rows // k, masks[rows % k]

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            images, m = windows(start, stop)
            return torch.where(m[:, None], baseline[images], x[images]), resolved[images]

        def consume(start: int, stop: int, out: PassOutput) -> None:
            images, m = windows(start, stop)
            drop = score_x[images] - out.scores
            total.index_add_(0, images, drop.view(-1, 1, 1) * m)

        yield Rows(len(x) * k, make_rows, consume)  # forward only
        coverage = masks.sum(dim=0).to(x.dtype)
        per_pixel = total / coverage
        return Explanation(per_pixel[:, None].expand_as(x).clone(), clean.logits, resolved)
