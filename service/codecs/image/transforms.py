"""Pillow image -> model input, per the model's spec; and the geometry to map maps back to the image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from ...models.spec import ModelSpec


@dataclass(frozen=True)
class Geometry:
    """Where the model's input came from in the original image: original size and the crop box."""

    width: int
    height: int
    box: tuple[float, float, float, float]  # left, top, right, bottom in original pixels


def to_input(image: Image.Image, spec: ModelSpec) -> tuple[Tensor, Geometry]:
    """(C, H, W) float32 in model-input space, and the geometry of the crop."""
    image = image.convert("L" if spec.channels == 1 else "RGB")
    height, width = spec.input_size
    if spec.resize == "exact":
        box = (0.0, 0.0, float(image.width), float(image.height))
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
    else:
        # Scale so the image covers the input, then take the centre: the region the model actually sees.
        scale = max(width / image.width, height / image.height)
        crop_w, crop_h = width / scale, height / scale
        left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
        box = (left, top, left + crop_w, top + crop_h)
        resized = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
    pixels = TF.to_dtype(TF.pil_to_tensor(resized), torch.float32, scale=True)
    tensor = TF.normalize(pixels, list(spec.mean), list(spec.std))
    return tensor, Geometry(image.width, image.height, box)
