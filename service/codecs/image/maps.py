"""Saliency maps -> typed arrays, heatmap PNGs and overlays on the original image.

Colours come from matplotlib's colormaps; PNGs from Pillow.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image
from torch import Tensor

from .transforms import Geometry


def to_original_size(maps: Tensor, geometry: Geometry) -> Tensor:
    """(..., h, w) at input size -> (..., H, W) at the uploaded image's size; zero outside the crop."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    left, top, right, bottom = geometry.box
    if (left, top, right, bottom) == (0, 0, geometry.width, geometry.height):
        out = F.interpolate(flat, size=(geometry.height, geometry.width), mode="bilinear", align_corners=False)
        return out.reshape(*lead, geometry.height, geometry.width)
    if left < 0 or top < 0 or right > geometry.width or bottom > geometry.height:
        return letterboxed(flat, geometry).reshape(*lead, geometry.height, geometry.width)
    x0, y0 = round(left), round(top)
    w, h = max(1, round(right) - x0), max(1, round(bottom) - y0)
    inner = F.interpolate(flat, size=(h, w), mode="bilinear", align_corners=False)
    out = torch.zeros((flat.shape[0], 1, geometry.height, geometry.width), dtype=inner.dtype)
    out[..., y0 : y0 + h, x0 : x0 + w] = inner[..., : geometry.height - y0, : geometry.width - x0]
    return out.reshape(*lead, geometry.height, geometry.width)


def letterboxed(flat: Tensor, geometry: Geometry) -> Tensor:
    """(n, 1, h, w) maps of a letterboxed input -> the image's part of them at its size (the borders go)."""
    left, top, right, bottom = geometry.box
    h, w = flat.shape[-2:]
    sx, sy = w / (right - left), h / (bottom - top)
    u0, v0 = round(-left * sx), round(-top * sy)
    u1, v1 = max(u0 + 1, round((geometry.width - left) * sx)), max(v0 + 1, round((geometry.height - top) * sy))
    inner = flat[..., v0:v1, u0:u1]
    return F.interpolate(inner, size=(geometry.height, geometry.width), mode="bilinear", align_corners=False)


def unit_limits(values: np.ndarray, signed: bool) -> tuple[float, float]:
    """The values that to_unit maps to 0 and 1 (signed maps: -peak and peak)."""
    lo, hi = float(values.min()), float(values.max())
    if signed:
        peak = max(abs(lo), abs(hi)) or 1.0
        return -peak, peak
    return lo, hi


def to_unit(values: np.ndarray, signed: bool, limits: tuple[float, float] | None = None) -> np.ndarray:
    """Display scale [0, 1]: signed maps put 0 in the middle; others are min-max scaled."""
    lo, hi = limits or unit_limits(values, signed)
    if signed:
        return np.clip(values / hi, -1, 1) / 2 + 0.5
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def colorize(unit: np.ndarray, colormap: str) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8."""
    rgba = colormaps[colormap](unit, bytes=True)
    return rgba[..., :3]


def png_bytes(rgb: np.ndarray) -> bytes:
    return save_png(Image.fromarray(np.ascontiguousarray(rgb), mode="RGB"))


def save_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Run-length zlib at level 1: several times faster than the default (5.0 -> 3.9 ms for a 224px
    # overlay, measured in bench/) for a few % more bytes; latency matters more than size here.
    image.save(buf, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buf.getvalue()


# Pixels drawn at a time. Whole-image float32 temporaries cost 67 bytes per pixel (a 4000x3000 overlay took
# 800 MB; VmHWM, measured for the admission estimate); strips of about 1 M pixels keep them near 70 MB.
STRIP_PIXELS = 2**20


def draw(
    map2d: np.ndarray, colormap: str, signed: bool, under: Image.Image | None = None, alpha: float = 1.0
) -> Image.Image:
    """The colormapped map as an RGB image, alpha-blended onto `under` (same size) when given; in strips."""
    height, width = map2d.shape
    limits = unit_limits(map2d, signed)
    canvas = Image.new("RGB", (width, height))
    step = max(1, STRIP_PIXELS // width)
    for top in range(0, height, step):
        bottom = min(top + step, height)
        rgb = colorize(to_unit(map2d[top:bottom], signed, limits), colormap)
        if under is not None:
            base = np.asarray(under.crop((0, top, width, bottom)).convert("RGB"), dtype=np.float32)
            blended = (1 - alpha) * base + alpha * rgb.astype(np.float32)
            rgb = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(np.ascontiguousarray(rgb), mode="RGB"), (0, top))
    return canvas


def heatmap_png(map2d: np.ndarray, colormap: str, signed: bool) -> bytes:
    return save_png(draw(map2d, colormap, signed))


def overlay_png(image: Image.Image, map_at_original: np.ndarray, colormap: str, alpha: float, signed: bool) -> bytes:
    """The heatmap alpha-blended onto the original image, at its original size."""
    return save_png(draw(map_at_original, colormap, signed, image, alpha))
