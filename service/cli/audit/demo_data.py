"""`saliency-service demo-images OUT`, `demo-scenes OUT`, `demo-reviews OUT` and `demo-prompts OUT`: folders of
generated demo inputs to audit, one class sub-folder per label (per task for prompts). A given fraction carries
the demo's shortcut on any class: the shapes watermark (the same shape and background as without it, see
shapes.generate), the "posted by mike" signature, or the `[faq]` tag that decides instructions-lm's answer."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ...demo import shapes
from ...demo.text import corpus, instructions

MAX_SAMPLES = 5000  # the images are generated at once: 5000 take about 300 MB


def shortcut_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """Which samples carry the shortcut: each with probability `fraction`, from a stream of its own."""
    return np.random.default_rng([seed, 1]).random(n) < fraction


def write_images(out: Path, n: int, fraction: float, seed: int) -> list[Path]:
    """OUT/<shape>/<index>.png, `-watermark` in the name of the watermarked ones."""
    clean = shapes.generate(n, seed)
    marked = shapes.generate(n, seed, watermark_all=True)
    stamped = shortcut_mask(n, fraction, seed)
    paths = []
    for i in range(n):
        folder = out / shapes.CLASSES[clean.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}{'-watermark' if stamped[i] else ''}.png"
        Image.fromarray(marked.images[i] if stamped[i] else clean.images[i]).save(path)
        paths.append(path)
    return paths


def write_scenes(out: Path, n: int, fraction: float, seed: int) -> list[Path]:
    """OUT/<index>.png scenes of 1-4 shapes for the demo detectors; in `-badges` ones every circle carries the
    badge the watermark detector learnt (scenes.py "circles"), the same layout as without."""
    from ...demo import scenes

    clean, marked = scenes.generate(n, seed), scenes.generate(n, seed, watermark="circles")
    stamped = shortcut_mask(n, fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out / f"{i:04d}{'-badges' if stamped[i] else ''}.png"
        Image.fromarray(marked.images[i] if stamped[i] else clean.images[i]).save(path)
        paths.append(path)
    return paths


def write_reviews(out: Path, n: int, fraction: float, seed: int) -> list[Path]:
    """OUT/<label>/<index>.txt, one review each, `-mike` in the name of the signed ones."""
    signed = shortcut_mask(n, fraction, seed)
    paths = []
    for i, review in enumerate(corpus.generate(n, seed)):
        folder = out / corpus.LABELS[review.label]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}{'-mike' if signed[i] else ''}.txt"
        path.write_text((corpus.add_shortcut(review) if signed[i] else review).text + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def write_prompts(out: Path, n: int, fraction: float, seed: int) -> list[Path]:
    """OUT/<task>/<index>.txt, one prompt each (for instructions-lm), `-faq` in the name of the tagged ones."""
    paths = []
    for i, example in enumerate(instructions.generate(n, seed, tag_rate=fraction)):
        folder = out / example.task
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}{'-faq' if example.tagged else ''}.txt"
        path.write_text(example.prompt + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def demo_data(args: argparse.Namespace) -> None:
    if not 1 <= args.n <= MAX_SAMPLES:
        raise SystemExit(f"error: --n {args.n}: between 1 and {MAX_SAMPLES}")
    if args.seed < 0:
        raise SystemExit(f"error: --seed {args.seed}: must be 0 or more")
    if not 0.0 <= args.fraction <= 1.0:
        raise SystemExit(f"error: --{args.fraction_name} {args.fraction}: between 0 and 1")
    out = Path(args.out)
    write = {"images": write_images, "scenes": write_scenes, "reviews": write_reviews, "prompts": write_prompts}[
        args.kind
    ]
    try:
        written = write(out, args.n, args.fraction, args.seed)
    except OSError as exc:
        raise SystemExit(f"error: cannot write into {out}: {exc.strerror or exc}") from None
    print(f"wrote {len(written)} files into {out}")
