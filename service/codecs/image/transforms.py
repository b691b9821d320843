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
    # (a letterbox's box is larger than the image: its borders lie outside, at negative or large coordinates)

    def to_original(self, boxes: Tensor, size: tuple[int, int]) -> Tensor:
        """(K, 4) x0, y0, x1, y1 in input pixels of `size` (H, W) -> in the original image's pixels, clipped."""
        left, top, right, bottom = self.box
        sx, sy = (right - left) / size[1], (bottom - top) / size[0]
        out = boxes * boxes.new_tensor([sx, sy, sx, sy]) + boxes.new_tensor([left, top, left, top])
        return torch.stack(
            [out[:, 0].clamp(0, self.width), out[:, 1].clamp(0, self.height),
             out[:, 2].clamp(0, self.width), out[:, 3].clamp(0, self.height)], dim=1,
        )  # fmt: skip

    def to_input(self, boxes: Tensor, size: tuple[int, int]) -> Tensor:
        """The inverse of `to_original` (without clipping): boxes in original pixels -> input pixels."""
        left, top, right, bottom = self.box
        sx, sy = size[1] / (right - left), size[0] / (bottom - top)
        return (boxes - boxes.new_tensor([left, top, left, top])) * boxes.new_tensor([sx, sy, sx, sy])


def to_input(image: Image.Image, spec: ModelSpec) -> tuple[Tensor, Geometry]:
    """(C, H, W) float32 in model-input space, and the geometry of the crop."""
    image = image.convert("L" if spec.channels == 1 else "RGB")
    height, width = spec.input_size
    resample = RESAMPLING[spec.interpolation]
    if spec.resize == "exact":
        box = (0.0, 0.0, float(image.width), float(image.height))
        resized = image.resize((width, height), resample)
    elif spec.resize == "letterbox":
        resized, box = letterbox(image, (height, width), resample)
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


def letterbox(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The whole image scaled to fit `size` (H, W), centred on black: a detector sees every object, unstretched."""
    height, width = size
    scale = min(width / image.width, height / image.height)
    new_w, new_h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    left, top = (width - new_w) // 2, (height - new_h) // 2
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(image.resize((new_w, new_h), resample), (left, top))
    sx, sy = new_w / image.width, new_h / image.height
    return canvas, (-left / sx, -top / sy, (width - left) / sx, (height - top) / sy)


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
