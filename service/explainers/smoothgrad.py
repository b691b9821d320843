"""SmoothGrad (Smilkov et al. 2017) and its squared and variance variants.

Gradients at `samples` noisy copies x + e, e ~ N(0, s^2), s = noise * (max(x) - min(x)) per image.
Each image draws its noise from its own generator, in sample order, so its map does not depend on the
chunk size or on which other images share its batch; with `seed` it is reproducible bit for bit.
"""

from __future__ import annotations

import secrets
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from ..engine.plan import PassOutput, Rows, clean_rows
from .base import Capabilities, Cost, Explainer, Explanation, Params


class SmoothGradParams(Params):
    samples: int = Field(25, ge=1, le=4096, description="Noisy copies per image (one forward+backward each).")
    noise: float = Field(0.15, ge=0.0, le=1.0, description="Noise std as a fraction of the image's value range.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Makes the noise reproducible.")


class SmoothGrad(Explainer):
    name = "smoothgrad"
    description = "Mean gradient over noisy copies of the input (Smilkov et al. 2017)."
    params_model = SmoothGradParams
    capabilities = Capabilities(
        needs_gradients=True,
        uses_layer=False,
        convergence_delta=False,
        multiplies_by_inputs=False,
        output="pixel",
        modalities=("image", "text"),
    )
    statistic: ClassVar[Literal["mean", "mean_sq", "var"]] = "mean"

    def cost(self, params, input_size) -> Cost:
        return Cost(forward=params.samples + 1, backward=params.samples, driver="samples")

    def plan(self, model, x, targets, params, ctx):
        clean = yield from clean_rows(x, targets)
        logits, resolved = clean.logits, clean.targets
        n, k = len(x), params.samples
        # Images: a fraction of each image's value range; texts: of the spread of its tokens' embeddings,
        # and only on the user's tokens (not special tokens, padding, the mask and id features).
        spread = x.flatten(1).amax(dim=1) - x.flatten(1).amin(dim=1) if ctx.text is None else ctx.text.spread(x)
        sigma = params.noise * spread
        where = None if ctx.text is None else ctx.text.noise_mask(x)
        # A text draws noise for its own tokens only, so padding it in a batch does not change its draws.
        lengths = [x.shape[1]] * n if ctx.text is None else ctx.text.lengths(x)
        per_row = (-1, *[1] * (x.dim() - 1))
        # secrets, not torch.seed(): reseeding torch's global generator would leak into other requests.
        seeds = [params.seed if params.seed is not None else secrets.randbits(63) for _ in range(n)]
        gens = [torch.Generator(device=x.device).manual_seed(s) for s in seeds]
        # float64 accumulators: the variance E[g^2] - E[g]^2 cancels badly in float32.
        total = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        total_sq = torch.zeros_like(total)

        def image_index(start: int, stop: int) -> Tensor:
            return torch.arange(start, stop, device=x.device) // k

        def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
            images = image_index(start, stop)
            # Rows arrive in order, so each image's generator yields its samples in the same sequence.
            noise = torch.zeros((stop - start, *x.shape[1:]), device=x.device, dtype=x.dtype)
            for row, r in enumerate(range(start, stop)):
                own = (lengths[r // k], *x.shape[2:])
                noise[row, : own[0]] = torch.randn(own, generator=gens[r // k], device=x.device, dtype=x.dtype)
            noise = noise * sigma[images].view(per_row)
            return x[images] + (noise if where is None else noise * where[images]), resolved[images]

        def consume(start: int, stop: int, out: PassOutput) -> None:
            g = out.grads.double()
            total.index_add_(0, image_index(start, stop), g)
            total_sq.index_add_(0, image_index(start, stop), g * g)

        yield Rows(n * k, make_rows, consume, input_grad=True)
        mean, mean_sq = total / k, total_sq / k
        result = {"mean": mean, "mean_sq": mean_sq, "var": (mean_sq - mean * mean).clamp_min(0)}[self.statistic]
        seed_diag = torch.tensor(seeds, dtype=torch.int64)
        return Explanation(result.to(x.dtype), logits, resolved, {"seed": seed_diag})


class SmoothGradSquared(SmoothGrad):
    name = "smoothgrad_sq"
    description = "Mean squared gradient over noisy copies of the input (SmoothGrad-Squared)."
    statistic = "mean_sq"


class VarGrad(SmoothGrad):
    name = "vargrad"
    description = "Variance of the gradient over noisy copies of the input (VarGrad)."
    statistic = "var"
