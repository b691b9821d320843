"""Reference inputs ("absence of signal") shared by Integrated Gradients and occlusion."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from .base import PixelSpace

Baseline = Literal["black", "zero", "blur", "uniform", "mean"]


def make_baseline(kind: Baseline, x: Tensor, pixel_space: PixelSpace, blur_sigma: float = 5.0, seed: int = 0) -> Tensor:
    """A baseline with the shape of x (N, C, H, W), in model-input space."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "black":
        return pixel_space.from_pixels(torch.zeros_like(x))
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "blur":
        # Normalisation is per-channel affine, so blurring in model space equals blurring the pixels.
        # Reflect padding needs the radius below the image size.
        radius = max(0, min(int(3 * blur_sigma + 0.5), x.shape[-1] - 1, x.shape[-2] - 1))
        return TF.gaussian_blur(x, kernel_size=[2 * radius + 1] * 2, sigma=[blur_sigma] * 2)
    if kind == "uniform":
        # The same draw for every image, so an image's baseline does not depend on its batch.
        gen = torch.Generator(device=x.device).manual_seed(seed)
        pixels = torch.rand(x.shape[1:], generator=gen, device=x.device, dtype=x.dtype)
        return pixel_space.from_pixels(pixels.expand_as(x))
    raise ValueError(f"unknown baseline {kind!r}")
