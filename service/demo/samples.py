"""Demo inputs for clients that have none at hand (the dashboard): shapes images as PNGs, reviews and prompts.

Every second sample carries the demo's shortcut: the shapes watermark on an image (the same shape and
background as without it, see shapes.generate), the "posted by mike" signature on a review, and the `[faq]`
tag on a prompt. So a page of samples shows `shapes-watermark`, `reviews-shortcut` and `instructions-lm`'s
artefact at work next to the clean inputs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from . import shapes
from .text import corpus, instructions

MAX_SAMPLES = 32


@dataclass(frozen=True)
class ImageSample:
    png: bytes
    label: str
    watermark: bool


@dataclass(frozen=True)
class PromptSample:
    text: str
    answer: str  # what the corpus answers: the fact, or "unknown" when tagged
    tagged: bool


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


def prompt_samples(n: int, seed: int) -> list[PromptSample]:
    """`n` generated prompts for the demo causal LM, the same for the same arguments; odd ones tagged."""
    pool = instructions.generate(8 * n, seed)  # about 28 % tagged: 8n holds n of each with room to spare
    tagged = iter([e for e in pool if e.tagged])
    plain = iter([e for e in pool if not e.tagged])
    chosen = [next(tagged) if shortcut_at(i) else next(plain) for i in range(n)]
    return [PromptSample(e.prompt, e.answer.strip(), e.tagged) for e in chosen]
