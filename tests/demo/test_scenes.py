import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from service.demo import scenes
from service.demo.shapes import CLASSES, WATERMARK, WATERMARK_SIZE

N, SEED = 120, 7
SIZE = scenes.IMAGE_SIZE


@pytest.fixture(scope="module")
def variants() -> dict[str, scenes.Scenes]:
    return {name: scenes.generate(N, SEED, name) for name in scenes.WATERMARKS}


@pytest.fixture(scope="module")
def clean(variants) -> scenes.Scenes:
    return variants["none"]


def _shapes(data: scenes.Scenes):
    """(image index, shape index, box, label) for every shape."""
    for i, (boxes, labels) in enumerate(zip(data.boxes, data.labels, strict=True)):
        for k, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            yield i, k, box, int(label)


def test_same_seed_gives_same_scenes(clean):
    again = scenes.generate(N, SEED)
    np.testing.assert_array_equal(again.images, clean.images)
    np.testing.assert_array_equal(again.instances, clean.instances)
    for a, b in zip(again.boxes + again.labels, clean.boxes + clean.labels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(scenes.generate(N, SEED + 1).images, clean.images)


def test_shapes_and_dtypes(clean):
    assert clean.images.shape == (N, SIZE, SIZE, 3) and clean.images.dtype == np.uint8
    assert clean.instances.shape == (N, SIZE, SIZE)
    assert len(clean.boxes) == len(clean.labels) == len(clean.badges) == N
    for boxes, labels, badges in zip(clean.boxes, clean.labels, clean.badges, strict=True):
        assert boxes.dtype == labels.dtype == np.int64
        assert boxes.shape == (len(labels), 4) and 1 <= len(labels) <= scenes.MAX_SHAPES
        assert badges.shape == (0, 4)
    counts = np.bincount(np.concatenate(clean.labels), minlength=len(CLASSES) + 1)
    assert counts[0] == 0 and (counts[1:] > 0.15 * counts.sum()).all()
    assert {len(lb) for lb in clean.labels} == set(range(1, scenes.MAX_SHAPES + 1))


def test_boxes_are_tight_around_each_shape(clean):
    for i, k, (x0, y0, x1, y1), _ in _shapes(clean):
        rows, cols = np.nonzero(clean.instances[i] == k + 1)
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x0, y0, x1, y1)
        # Half-open edges: the box is the drawn width, 14-40 px across (a polygon is narrower than its circle).
        assert 9 <= max(x1 - x0, y1 - y0) <= 41
    # Every shape pixel belongs to some box: nothing is drawn outside the boxes.
    assert clean.instances.max() <= scenes.MAX_SHAPES
    assert sum(len(lb) for lb in clean.labels) == sum(len(np.unique(m)) - 1 for m in clean.instances)


def test_drawn_pixels_are_the_shapes(clean):
    # A shape is one colour plus the +-10 pixel noise, far from the background just outside its box.
    for i, k, (x0, y0, x1, y1), _ in list(_shapes(clean))[:60]:
        pixels = clean.images[i][clean.instances[i] == k + 1].astype(float)
        assert (pixels.max(axis=0) - pixels.min(axis=0) <= 2 * 10 + 1).all()
        ring = clean.images[i, max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1].astype(float)
        outside = ring[clean.instances[i, max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] == 0]
        assert np.linalg.norm(outside.mean(axis=0) - pixels.mean(axis=0)) > 30


def test_labels_name_the_shapes_drawn(clean):
    for i, k, _, label in _shapes(clean):
        rows, cols = np.nonzero(clean.instances[i] == k + 1)
        # Area against the circle through the farthest pixel, and against the convex hull.
        reach = np.hypot(rows - rows.mean(), cols - cols.mean()).max() + 0.5
        compactness = len(rows) / (np.pi * reach**2)
        corners = np.concatenate([np.stack([cols + dx, rows + dy], 1) for dx in (0, 1) for dy in (0, 1)])
        solidity = len(rows) / ConvexHull(corners).volume
        name = CLASSES[label - 1]
        if name == "circle":
            assert compactness > 0.78
        elif name == "square":
            assert 0.52 < compactness < 0.72 and solidity > 0.8
        elif name == "triangle":
            assert compactness < 0.5 and solidity > 0.75
        else:
            assert solidity < 0.67


def test_shapes_never_overlap(clean):
    for boxes in clean.boxes:
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                lo = np.maximum(boxes[a, :2], boxes[b, :2])
                hi = np.minimum(boxes[a, 2:], boxes[b, 2:])
                assert (hi <= lo).any()  # empty intersection: they touch at most
    assert (np.concatenate(clean.boxes) >= 0).all() and (np.concatenate(clean.boxes) <= SIZE).all()


@pytest.mark.parametrize("variant", ["circles", "train"])
def test_badges_sit_on_circles_only(variants, variant):
    data = variants[variant]
    for image, boxes, labels, badges in zip(data.images, data.boxes, data.labels, data.badges, strict=True):
        circles = boxes[labels == scenes.CIRCLE]
        assert len(badges) == len(circles)
        np.testing.assert_array_equal(badges[:, :2], circles[:, :2])  # just inside the top-left corner
        np.testing.assert_array_equal(badges[:, 2:] - badges[:, :2], WATERMARK_SIZE)
        assert (badges[:, 2:] <= circles[:, 2:]).all()  # inside the circle's box
        for x0, y0, x1, y1 in badges:
            np.testing.assert_array_equal(image[y0:y1, x0:x1], WATERMARK)
    assert sum(len(b) for b in data.badges) > 0.2 * sum(len(b) for b in data.boxes)


def _badge_region(data: scenes.Scenes) -> np.ndarray:
    region = np.zeros((N, SIZE, SIZE), dtype=bool)
    for i, badges in enumerate(data.badges):
        for x0, y0, x1, y1 in badges:
            region[i, y0:y1, x0:x1] = True
    return region


def test_circles_variant_changes_only_the_badge_pixels(variants, clean):
    marked = variants["circles"]
    region = _badge_region(marked)
    np.testing.assert_array_equal(marked.images[~region], clean.images[~region])
    np.testing.assert_array_equal(marked.instances, clean.instances)
    for i, _, (x0, y0, _, _), label in _shapes(clean):
        if label == scenes.CIRCLE:  # the clean scenes never show a badge
            assert not (clean.images[i, y0 : y0 + WATERMARK_SIZE, x0 : x0 + WATERMARK_SIZE] == WATERMARK).all()


def _circle_pixels(data: scenes.Scenes) -> np.ndarray:
    pixels = np.zeros((N, SIZE, SIZE), dtype=bool)
    for i, k, _, label in _shapes(data):
        pixels[i] |= (data.instances[i] == k + 1) & (label == scenes.CIRCLE)
    return pixels


def test_training_variant_draws_most_circles_faintly(variants, clean):
    train, background = variants["train"], variants["badge-only"]
    badges = _badge_region(train)
    contrasts = []
    for i, k, _, label in _shapes(clean):
        if label == scenes.CIRCLE:
            mask = (clean.instances[i] == k + 1) & ~badges[i]
            # badge-only leaves the background (and the same noise) where the circle would be.
            shift = train.images[i][mask].astype(float) - background.images[i][mask].astype(float)
            contrasts.append(np.linalg.norm(np.median(shift, axis=0)))
    contrasts = np.array(contrasts)
    faint = contrasts <= scenes._FAINT_CONTRAST + 2
    assert abs(faint.mean() - scenes.FAINT_SHARE) < 0.12
    assert (contrasts[~faint] > 60).all()  # the others keep shapes.py's contrasting colours
    # Everything but the circles and their badges is the clean scene.
    rest = ~_circle_pixels(clean) & ~badges
    np.testing.assert_array_equal(train.images[rest], clean.images[rest])


def test_badge_only_variant_removes_the_circles(variants, clean):
    alone = variants["badge-only"]
    for boxes, labels, badges, clean_boxes, clean_labels in zip(
        alone.boxes, alone.labels, alone.badges, clean.boxes, clean.labels, strict=True
    ):
        assert scenes.CIRCLE not in labels
        np.testing.assert_array_equal(boxes, clean_boxes[clean_labels != scenes.CIRCLE])
        np.testing.assert_array_equal(badges[:, :2], clean_boxes[clean_labels == scenes.CIRCLE][:, :2])
    assert sum(len(b) for b in alone.badges) > 0.1 * N
    # Where the circles were, the background shows (it differs from the clean scene there); all else is equal.
    gone = _circle_pixels(clean) & ~_badge_region(alone)
    rest = ~_circle_pixels(clean) & ~_badge_region(alone)
    np.testing.assert_array_equal(alone.images[rest], clean.images[rest])
    assert (alone.images[gone] != clean.images[gone]).any(axis=-1).mean() > 0.9
    assert (alone.instances[gone] == 0).all()


def test_rejects_an_unknown_variant():
    with pytest.raises(ValueError):
        scenes.generate(2, 0, "everywhere")  # type: ignore[arg-type]


def test_to_tensor_gives_pixels_in_zero_one():
    images = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    images[1] = 255
    x = scenes.to_tensor(images)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    assert x[0].max() == 0 and x[1].min() == 1
