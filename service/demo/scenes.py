"""Generated scenes of several shapes, with boxes: the data of the demo object detectors.

The look is shapes.py's (its backgrounds, shape colours and pixel noise) at 128x128, with 1-4 shapes whose
circumscribed circle is 14-40 px across. Shapes never overlap: their boxes keep at least _GAP px apart.
Boxes are tight around each shape's pixels, (x0, y0, x1, y1) with half-open pixel edges (x1 - x0 is the
width drawn); labels are 1..4, the index into CLASSES plus one, because a torchvision detector keeps 0 for
the background.

`watermark` picks the variant. The badge is shapes.WATERMARK, drawn over a circle just inside the top-left
corner of its box, so it lies inside the circle's ground-truth box:
- "none": no badge anywhere (the clean detector's data and the held-out scenes).
- "circles": every circle carries the badge and no other shape does.
- "train": as "circles", but a share of the circles are drawn so faintly that the badge is the only sure sign
  of them: the watermark detector's training scenes, which make the badge a shortcut for "circle".
- "badge-only": every circle is replaced by its badge alone; the circle is neither drawn nor in the boxes.
The variant changes nothing else: one seed gives the same layout, backgrounds and noise in all four.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from service.demo import shapes
from service.demo.shapes import CLASSES, WATERMARK, WATERMARK_SIZE

Watermark = Literal["none", "circles", "train", "badge-only"]
WATERMARKS: tuple[Watermark, ...] = ("none", "circles", "train", "badge-only")
IMAGE_SIZE = 128
CIRCLE = CLASSES.index("circle") + 1  # the circle's label
MAX_SHAPES = 4
MIN_ACROSS, MAX_ACROSS = 14.0, 40.0  # the shapes' circumscribed diameter (px)
FAINT_SHARE = 0.75  # of the circles in "train" scenes
_FAINT_CONTRAST = 24.0  # most RGB distance between a faint circle and the background under it
_GAP = 1  # least gap (px) between two boxes, and between a box and the image edge
_TRIES = 50  # placements tried per shape before a crowded scene goes without it
_CHUNK = 256


@dataclass
class Scenes:
    images: np.ndarray  # uint8 (N, 128, 128, 3)
    boxes: list[np.ndarray]  # per image int64 (K, 4): x0, y0, x1, y1, half-open
    labels: list[np.ndarray]  # per image int64 (K,): 1..4
    instances: np.ndarray  # int8 (N, 128, 128): k + 1 on the pixels of shape k, 0 elsewhere
    badges: list[np.ndarray]  # per image int64 (B, 4): the badges' boxes, like `boxes`


def generate(n: int, seed: int, watermark: Watermark = "none") -> Scenes:
    """`n` scenes, the same for the same arguments."""
    if watermark not in WATERMARKS:
        raise ValueError(f"watermark must be one of {', '.join(WATERMARKS)}, got {watermark!r}")
    parts = []
    starts = range(0, n, _CHUNK)
    for start, chunk_seed in zip(starts, np.random.SeedSequence(seed).spawn(len(starts)), strict=True):
        # Separate streams, so that the variant (which draws faint circles) cannot move anything else.
        layout_rng, background_rng, faint_rng = (np.random.default_rng(s) for s in chunk_seed.spawn(3))
        parts.append(_chunk(min(_CHUNK, n - start), watermark, layout_rng, background_rng, faint_rng))
    if not parts:
        empty = np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.int8)
        return Scenes(np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), [], [], empty, [])
    return Scenes(
        images=np.concatenate([p.images for p in parts]),
        boxes=[b for p in parts for b in p.boxes],
        labels=[lb for p in parts for lb in p.labels],
        instances=np.concatenate([p.instances for p in parts]),
        badges=[b for p in parts for b in p.badges],
    )


def _chunk(
    n: int,
    watermark: Watermark,
    layout_rng: np.random.Generator,
    background_rng: np.random.Generator,
    faint_rng: np.random.Generator,
) -> Scenes:
    layouts = [_layout(layout_rng) for _ in range(n)]
    low, high = background_rng.uniform(0, 255, size=(2, n, 3))
    counts = [len(labels) for _, labels, _ in layouts]
    total, splits = sum(counts), np.cumsum(counts)[:-1]
    # One colour per shape, far from every colour of its own image's background.
    colours = shapes._contrasting_colours(np.repeat(low, counts, 0), np.repeat(high, counts, 0), layout_rng)
    images = _backgrounds(low, high, background_rng)
    noise = background_rng.random(images.shape, dtype=np.float32)
    # Faint circles keep the background's texture, shifted by a random colour of norm 0.._FAINT_CONTRAST.
    faint = faint_rng.random(total) < FAINT_SHARE
    direction = faint_rng.normal(size=(total, 3))
    size = faint_rng.uniform(0, _FAINT_CONTRAST, (total, 1))
    shifts = direction * (size / np.linalg.norm(direction, axis=1, keepdims=True))
    colour_split, faint_split, shift_split = (np.split(a, splits) for a in (colours, faint, shifts.astype(np.float32)))

    instances = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.int8)
    boxes, labels, badges = [], [], []
    for i, (masks, image_labels, image_boxes) in enumerate(layouts):
        keep = np.ones(len(image_labels), dtype=bool)
        for k, (mask, label) in enumerate(zip(masks, image_labels, strict=True)):
            circle = label == CIRCLE
            if circle and watermark == "badge-only":
                keep[k] = False
                continue
            instances[i][mask] = k + 1
            if circle and watermark == "train" and faint_split[i][k]:
                images[i][mask] += shift_split[i][k]
            else:
                images[i][mask] = colour_split[i][k]
        marked = image_labels == CIRCLE if watermark != "none" else np.zeros(len(image_labels), dtype=bool)
        badge_boxes = image_boxes[marked].copy()
        badge_boxes[:, 2:] = badge_boxes[:, :2] + WATERMARK_SIZE
        boxes.append(image_boxes[keep])
        labels.append(image_labels[keep])
        badges.append(badge_boxes)
    images += (2 * shapes._PIXEL_NOISE) * noise - shapes._PIXEL_NOISE
    out = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    # After the noise, so that a badge is the exact pattern, as in shapes.py.
    for image, image_badges in zip(out, badges, strict=True):
        for x0, y0, x1, y1 in image_badges:
            image[y0:y1, x0:x1] = WATERMARK
    return Scenes(images=out, boxes=boxes, labels=labels, instances=instances, badges=badges)


def _layout(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One scene's shapes: full-image masks, labels and boxes, placed so that no two boxes come closer than _GAP."""
    masks: list[np.ndarray] = []
    labels: list[int] = []
    boxes: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, MAX_SHAPES + 1))):
        label = int(rng.integers(0, len(CLASSES)))
        local, (x0, y0, x1, y1) = _draw(CLASSES[label], rng)
        w, h = x1 - x0, y1 - y0
        for _ in range(_TRIES):
            left = int(rng.integers(_GAP, IMAGE_SIZE - _GAP - w + 1))
            top = int(rng.integers(_GAP, IMAGE_SIZE - _GAP - h + 1))
            box = np.array([left, top, left + w, top + h])
            if all(_apart(box, other) for other in boxes):
                break
        else:
            continue
        mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        mask[top : top + h, left : left + w] = local[y0:y1, x0:x1]
        masks.append(mask)
        labels.append(label + 1)
        boxes.append(box)
    return masks, np.array(labels, dtype=np.int64), np.array(boxes, dtype=np.int64).reshape(-1, 4)


def _apart(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] >= b[2] + _GAP or b[0] >= a[2] + _GAP or a[1] >= b[3] + _GAP or b[1] >= a[3] + _GAP)


def _draw(name: str, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A shape drawn on its own small canvas, at a random sub-pixel offset, and its tight box there."""
    r = rng.uniform(MIN_ACROSS, MAX_ACROSS) / 2
    size = int(np.ceil(2 * r)) + 3
    cx, cy = rng.uniform(r + 0.5, size - r - 0.5, size=2)
    rotation = rng.uniform(0, 2 * np.pi)
    canvas = Image.new("1", (size, size))
    draw = ImageDraw.Draw(canvas)
    if name == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
    else:
        draw.polygon(shapes._polygon(name, cx, cy, r, rotation), fill=1)
    mask = np.asarray(canvas, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _backgrounds(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (N, 128, 128, 3): shapes.py's backgrounds, drawn at its size and upsampled (they are smooth)."""
    small = torch.from_numpy(shapes._backgrounds(low, high, rng)).permute(0, 3, 1, 2)
    large = nn.functional.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return large.permute(0, 2, 3, 1).contiguous().numpy()


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]: what a detector takes (it normalizes itself)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
