"""The report's pictures as data: URIs: mean maps on a matplotlib colormap, maps over their image, and texts
with each token on its score's colour. Drawn with the service's own colormap and highlighting code."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from saliency_client import Token

from ...codecs.image.decode import decode_image
from ...codecs.image.maps import draw
from ...codecs.text.render import highlighted
from .region import Region

ALPHA = 0.5  # the map's weight over the image, as the service's overlays default to
LARGEST = 192  # pictures are scaled down to at most this many pixels a side: the report stays small


def data_uri(picture: Image.Image) -> str:
    if max(picture.size) > LARGEST:
        picture = picture.copy()
        picture.thumbnail((LARGEST, LARGEST), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def mean_map(saliency: np.ndarray, colormap: str, region: Region | None) -> str:
    """A mean map, min-max scaled for display (its own extremes are the colormap's ends)."""
    return data_uri(outlined(draw(saliency, colormap, signed=False), region))


def overlay(path: str, saliency: np.ndarray, colormap: str, region: Region | None) -> str:
    """The map over the image as the model's input saw it: the image scaled to the map's size (for an image of
    another aspect ratio, its centre crop, as a shorter_side model sees it). The map alone when the file
    cannot be read here."""
    height, width = saliency.shape
    try:
        picture = decode_image(Path(path).read_bytes(), path, sys.maxsize, 2**31).convert("RGB")
    except Exception:  # the service read it; whatever fails here, the map is still worth showing
        return mean_map(saliency, colormap, region)
    return data_uri(outlined(draw(saliency, colormap, False, as_input(picture, width, height), ALPHA), region))


def as_input(picture: Image.Image, width: int, height: int) -> Image.Image:
    scale = max(width / picture.width, height / picture.height)
    crop_w, crop_h = width / scale, height / scale
    if abs(crop_w - picture.width) < 1 and abs(crop_h - picture.height) < 1:
        return picture.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (picture.width - crop_w) / 2, (picture.height - crop_h) / 2
    return picture.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h))


def outlined(picture: Image.Image, region: Region | None) -> Image.Image:
    """The region's box drawn in white, one pixel outside it where there is room."""
    if region is not None:
        box = (
            max(region.x0 - 1, 0),
            max(region.y0 - 1, 0),
            min(region.x1, picture.width - 1),
            min(region.y1, picture.height - 1),
        )
        ImageDraw.Draw(picture).rectangle(box, outline=(255, 255, 255))
    return picture


def text(source: str, tokens: list[Token]) -> str:
    """The text with each token on a diverging colour (red for the class, blue against): escaped HTML."""
    item = {
        "text": source,
        "offsets": [(t.start or 0, t.end or 0) for t in tokens],
        "special": [t.special or t.start is None for t in tokens],
    }
    return highlighted(item, np.array([t.score or 0.0 for t in tokens], dtype=np.float32), signed=True)
