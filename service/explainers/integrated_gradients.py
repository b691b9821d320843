"""Integrated Gradients (Sundararajan et al. 2017).

attribution = (x - b) * sum_j w_j dS/dx(b + a_j (x - b)), a quadrature of the path integral from the
baseline b to x. Completeness: the attributions sum to S(x) - S(b) up to the quadrature error, reported per
row as `completeness_delta`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ..engine.plan import PassOutput, Rows, clean_rows, pass_over
from .base import Capabilities, Cost, Explainer, Explanation, Params
from .baselines import make_baseline
from .text_space import TextBaseline

Rule = Literal["gauss_legendre", "riemann_right", "riemann_middle"]


class IntegratedGradientsParams(Params):
    steps: int = Field(50, ge=1, le=4096, description="Points on the path (one forward+backward each).")
    rule: Rule = Field("gauss_legendre", description="Quadrature rule for the path integral.")
    baseline: Literal["black", "zero", "blur", "uniform"] = Field(
        "black",
        description="black: pixel 0; zero: 0 in model-input space; blur: Gaussian-blurred input; "
        "uniform: seeded uniform noise in the pixel range.",
    )
    blur_sigma: float = Field(5.0, gt=0.0, le=100.0, description="Sigma in pixels of the blur baseline.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the uniform baseline.")


class TextIntegratedGradientsParams(Params):
    steps: int = Field(50, ge=1, le=4096, description="Points on the path (one forward+backward each).")
    rule: Rule = Field("gauss_legendre", description="Quadrature rule for the path integral.")
    baseline: TextBaseline = Field(
        "pad",
        description="pad: every token but the special ones replaced by the pad token; mask: by the mask token; "
        "zero: zero embeddings. Attributed at the embedding layer's output.",
    )


def quadrature(rule: Rule, steps: int) -> tuple[list[float], list[float]]:
    """Points a_j in [0, 1] and weights w_j (summing to 1) of the path integral."""
    if rule == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return ((nodes + 1) / 2).tolist(), (weights / 2).tolist()
    offset = 1.0 if rule == "riemann_right" else 0.5
    return [(j + offset) / steps for j in range(steps)], [1.0 / steps] * steps


class IntegratedGradients(Explainer):
    name = "integrated_gradients"
    description = "Path integral of gradients from a baseline to the input, times (input - baseline)."
    params_model = IntegratedGradientsParams
    text_params_model = TextIntegratedGradientsParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=True,
        multiplies_by_inputs=True,
        output="pixel",
        modalities=("image", "text", "detection", "causal_lm"),
    )

    def cost(self, params, input_size) -> Cost:
        return Cost(forward=params.steps + 2, backward=params.steps, driver="steps")

    def plan(self, model, x, targets, params, ctx):
        n, k = len(x), params.steps
        if ctx.text is not None:
            baseline = ctx.text.baseline(params.baseline, x)
        else:
            baseline = make_baseline(params.baseline, x, ctx.pixel_space, params.blur_sigma, params.seed)
        per_row = (-1, *[1] * (x.dim() - 1))
        # The prediction and S(x) first: the baseline is scored on the image's class, not its own top class.
        clean = yield from clean_rows(x, targets)
        resolved = clean.targets
        base = yield from pass_over(baseline, resolved)
        alphas, weights = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in quadrature(params.rule, k))
        delta_x = x - baseline
        total = torch.zeros_like(x)

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            rows = torch.arange(start, stop, device=x.device)
            images, a = rows // k, alphas[rows % k].view(per_row)
            return baseline[images] + a * delta_x[images], resolved[images]

        def consume(start: int, stop: int, out: PassOutput) -> None:
            rows = torch.arange(start, stop, device=x.device)
            total.index_add_(0, rows // k, out.grads * weights[rows % k].view(per_row))

        yield Rows(n * k, make_rows, consume, input_grad=True)
        attributions = delta_x * total
        delta = attributions.flatten(1).sum(dim=1) - (clean.scores - base.scores)
        return Explanation(attributions, clean.logits, resolved, {"completeness_delta": delta})
