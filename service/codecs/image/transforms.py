"""Pillow image -> model input, per the model's spec; and the geometry to map maps back to the image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from ...models.spec import ModelSpec

RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


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
    resample = RESAMPLING[spec.interpolation]
    if spec.resize == "exact":
        box = (0.0, 0.0, float(image.width), float(image.height))
        resized = image.resize((width, height), resample)
    elif spec.resize_size is not None:
        resized, box = preset_crop(image, spec.resize_size, (height, width), resample)
    else:
        # Scale so the image covers the input, then take the centre: the region the model actually sees.
        scale = max(width / image.width, height / image.height)
        crop_w, crop_h = width / scale, height / scale
        left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
        box = (left, top, left + crop_w, top + crop_h)
        resized = image.resize((width, height), resample, box=box)
    pixels = TF.to_dtype(TF.pil_to_tensor(resized), torch.float32, scale=True)
    tensor = TF.normalize(pixels, list(spec.mean), list(spec.std))
    return tensor, Geometry(image.width, image.height, box)


def preset_crop(
    image: Image.Image, resize_size: int, crop: tuple[int, int], resample: Image.Resampling
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """torchvision's classification presets, step for step (the pixels the weights were trained on): the
    shorter side to resize_size, the longer one scaled and truncated, then the centre crop at whole pixels."""
    height, width = crop
    if image.width <= image.height:
        new_w, new_h = resize_size, int(resize_size * image.height / image.width)
    else:
        new_w, new_h = int(resize_size * image.width / image.height), resize_size
    left, top = round((new_w - width) / 2), round((new_h - height) / 2)
    sx, sy = new_w / image.width, new_h / image.height
    box = (left / sx, top / sy, (left + width) / sx, (top + height) / sy)
    return image.resize((new_w, new_h), resample).crop((left, top, left + width, top + height)), box
