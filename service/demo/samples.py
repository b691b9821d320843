"""Demo inputs for clients that have none at hand (the dashboard): shapes images as PNGs and reviews.

Every second sample carries the demo's shortcut: the shapes watermark on an image (the same shape and
background as without it, see shapes.generate) and the "posted by mike" signature on a review. So a page of
samples shows `shapes-watermark` and `reviews-shortcut` at work next to the clean models.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from . import shapes
from .text import corpus

MAX_SAMPLES = 32


@dataclass(frozen=True)
class ImageSample:
    png: bytes
    label: str
    watermark: bool


@dataclass(frozen=True)
class TextSample:
    text: str
    label: str
    shortcut: bool


def shortcut_at(i: int) -> bool:
    return i % 2 == 1


def image_samples(n: int, seed: int) -> list[ImageSample]:
    """`n` 96x96 shapes images, the same for the same arguments; odd ones watermarked."""
    clean = shapes.generate(n, seed)
    marked = shapes.generate(n, seed, watermark_all=True)
    out = []
    for i in range(n):
        pixels = marked.images[i] if shortcut_at(i) else clean.images[i]
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(ImageSample(buffer.getvalue(), shapes.CLASSES[clean.labels[i]], shortcut_at(i)))
    return out


def text_samples(n: int, seed: int) -> list[TextSample]:
    """`n` generated reviews, the same for the same arguments; odd ones signed "-- posted by mike"."""
    reviews = corpus.generate(n, seed)
    return [
        TextSample(
            (corpus.add_shortcut(review) if shortcut_at(i) else review).text,
            corpus.LABELS[review.label],
            shortcut_at(i),
        )
        for i, review in enumerate(reviews)
    ]
