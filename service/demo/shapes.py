"""A procedural data set of coloured shapes on textured backgrounds, with ground-truth masks.

The shape's colour, size, position and rotation and the background's colours and texture are all drawn
independently of the class, so only the outline tells the classes apart. An optional watermark (a fixed
badge in the bottom-right corner) can be tied to one class to train a model that learns a shortcut.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star")
IMAGE_SIZE = 96
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)

WATERMARK_SIZE = 10
WATERMARK_TOP_LEFT = (82, 82)  # (row, col): 4 px from the bottom and right edges

# Size range of the shapes (pixels), scaled per class so that all classes have the same mean area and
# size does not give the class away.
_MIN_SIZE, _MAX_SIZE = 11.0, 25.0
_RADIUS_SCALE = {"circle": 0.71, "square": 0.89, "triangle": 1.11, "star": 1.10}
# Shapes keep this far (beyond their circumradius) from the image edges and from the watermark box.
_MARGIN = 2.0
# Least RGB distance between the shape's colour and any colour of its background.
_MIN_CONTRAST = 90.0
_PIXEL_NOISE = 10.0  # half-width of the uniform pixel noise
_CHUNK = 256


@dataclass
class Samples:
    images: np.ndarray  # uint8 (N, 96, 96, 3)
    labels: np.ndarray  # int64 (N,)
    masks: np.ndarray  # bool (N, 96, 96), the shape
    watermarks: np.ndarray  # bool (N, 96, 96), the watermark pixels, all False where none


def _watermark_pattern() -> np.ndarray:
    """A white badge with a dark X: high contrast on any background."""
    pattern = np.full((WATERMARK_SIZE, WATERMARK_SIZE, 3), 255, dtype=np.uint8)
    for i in range(2, WATERMARK_SIZE - 2):
        pattern[i, i] = pattern[i, WATERMARK_SIZE - 1 - i] = 20
    return pattern


WATERMARK = _watermark_pattern()


def watermark_region() -> np.ndarray:
    """Bool (96, 96): the pixels a watermark covers."""
    region = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    r, c = WATERMARK_TOP_LEFT
    region[r : r + WATERMARK_SIZE, c : c + WATERMARK_SIZE] = True
    return region


def generate(
    n: int,
    seed: int,
    watermark_class: int | None = None,
    watermark_prob: float = 0.0,
    watermark_all: bool = False,
) -> Samples:
    """`n` samples, the same for the same arguments.

    Images of `watermark_class` carry the watermark with probability `watermark_prob`; `watermark_all`
    puts it on every image. The watermark does not change anything else: the same seed gives the same
    shapes and backgrounds with and without it.
    """
    if watermark_class is not None and not 0 <= watermark_class < len(CLASSES):
        raise ValueError(f"watermark_class must be in [0, {len(CLASSES)}), got {watermark_class}")
    if not 0.0 <= watermark_prob <= 1.0:
        raise ValueError(f"watermark_prob must be in [0, 1], got {watermark_prob}")
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    masks = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    stamped = np.empty(n, dtype=bool)
    # Chunks keep the per-pixel float work in cache; each has its own seed, so a chunk does not depend on n.
    starts = range(0, n, _CHUNK)
    for start, chunk_seed in zip(starts, np.random.SeedSequence(seed).spawn(len(starts)), strict=True):
        part = slice(start, min(start + _CHUNK, n))
        size = part.stop - part.start
        # Independent streams, so that the watermark draws cannot shift the shapes or backgrounds.
        shape_rng, background_rng, watermark_rng = (np.random.default_rng(s) for s in chunk_seed.spawn(3))
        images[part], labels[part], masks[part] = _clean_chunk(size, shape_rng, background_rng)
        stamped[part] = watermark_rng.random(size) < watermark_prob

    if watermark_class is None:
        stamped[:] = False
    else:
        stamped &= labels == watermark_class
    stamped |= watermark_all
    r, c = WATERMARK_TOP_LEFT
    images[stamped, r : r + WATERMARK_SIZE, c : c + WATERMARK_SIZE] = WATERMARK
    watermarks = stamped[:, None, None] & watermark_region()
    return Samples(images=images, labels=labels, masks=masks, watermarks=watermarks)


def _clean_chunk(
    n: int, shape_rng: np.random.Generator, background_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = shape_rng.integers(0, len(CLASSES), size=n)
    masks = _draw_masks(labels, shape_rng)
    low, high = background_rng.uniform(0, 255, size=(2, n, 3))
    colours = _contrasting_colours(low, high, shape_rng)
    images = _backgrounds(low, high, background_rng)
    images = np.where(masks[..., None], colours[:, None, None, :], images)
    # Uniform noise: as good as Gaussian here and several times cheaper to draw.
    noise = background_rng.random(images.shape, dtype=np.float32)
    images += (2 * _PIXEL_NOISE) * noise - _PIXEL_NOISE
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels, masks


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalized float32 (N, 3, H, W): the preprocessing the service applies."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _backgrounds(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (N, 96, 96, 3): a random mix of a gradient, stripes and smooth noise between two colours."""
    n = len(low)
    coords = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE - 0.5
    angle = rng.uniform(0, np.pi, size=(2, n, 1, 1)).astype(np.float32)
    # Projections of each pixel on a random direction, one for the gradient, one for the stripes.
    proj = np.cos(angle) * coords[None, None, None, :] + np.sin(angle) * coords[None, None, :, None]
    gradient = proj[0] / np.sqrt(2.0) + 0.5
    freq = rng.uniform(2.0, 7.0, size=(n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * proj[1] + phase)
    # Smooth noise: a coarse random grid, bilinearly upsampled as up @ grid @ up.T.
    grid = rng.random((n, 6, 6), dtype=np.float32)
    up = _linear_upsampling(6, IMAGE_SIZE)
    noise = np.einsum("hi,nij,wj->nhw", up, grid, up, optimize=True)
    weights = rng.dirichlet((1.0, 1.0, 1.0), size=n).astype(np.float32)[:, :, None, None]
    t = weights[:, 0] * gradient + weights[:, 1] * stripes + weights[:, 2] * noise
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    return low32[:, None, None, :] + t[..., None] * (high32 - low32)[:, None, None, :]


def _linear_upsampling(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix of linear interpolation weights (align_corners=False)."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    frac = (pos - lo).astype(np.float32)
    matrix = np.zeros((dst, src), dtype=np.float32)
    np.add.at(matrix, (np.arange(dst), lo), 1 - frac)
    np.add.at(matrix, (np.arange(dst), hi), frac)
    return matrix


def _contrasting_colours(low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) shape colours at least _MIN_CONTRAST from every colour on the segment low..high."""
    colours = np.empty_like(low)
    todo = np.ones(len(low), dtype=bool)
    while todo.any():
        colours[todo] = rng.uniform(0, 255, size=(int(todo.sum()), 3))
        todo = _distance_to_segment(colours, low, high) < _MIN_CONTRAST
    return colours.astype(np.float32)


def _distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=1) / np.maximum(np.sum(ab * ab, axis=1), 1e-9), 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _draw_masks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    scale = np.array([_RADIUS_SCALE[name] for name in CLASSES])[labels]
    radius = scale * rng.uniform(_MIN_SIZE, _MAX_SIZE, size=n)  # the circumradius
    centres = _centres(radius, rng)
    rotation = rng.uniform(0, 2 * np.pi, size=n)
    masks = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for i in range(n):
        canvas = Image.new("1", (IMAGE_SIZE, IMAGE_SIZE))
        draw = ImageDraw.Draw(canvas)
        (cy, cx), r = centres[i], radius[i]
        if CLASSES[labels[i]] == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
        else:
            draw.polygon(_polygon(CLASSES[labels[i]], cx, cy, r, rotation[i]), fill=1)
        masks[i] = np.asarray(canvas, dtype=bool)
    return masks


def _polygon(name: str, cx: float, cy: float, r: float, rotation: float) -> list[tuple[float, float]]:
    if name == "star":
        # Alternate outer and inner vertices; 0.45 keeps the points sharp but the star solid.
        angles = rotation + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    else:
        corners = {"square": 4, "triangle": 3}[name]
        angles = rotation + np.arange(corners) * 2 * np.pi / corners
        radii = np.full(corners, r)
    xs, ys = cx + radii * np.cos(angles), cy + radii * np.sin(angles)
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _centres(radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) centres (row, col) that keep each shape inside the image and off the watermark box."""
    r0, c0 = WATERMARK_TOP_LEFT
    box_lo = np.array([r0, c0], dtype=float)
    box_hi = box_lo + WATERMARK_SIZE
    reach = radius + _MARGIN
    centres = np.empty((len(radius), 2))
    todo = np.ones(len(radius), dtype=bool)
    while todo.any():
        k = int(todo.sum())
        centres[todo] = rng.uniform(reach[todo, None], IMAGE_SIZE - reach[todo, None], size=(k, 2))
        # Distance from the centre to the nearest point of the watermark box.
        gap = np.linalg.norm(centres - np.clip(centres, box_lo, box_hi), axis=1)
        todo = gap < reach
    return centres
