import numpy as np
import pytest
import torch

from service.demo import shapes


@pytest.fixture(scope="module")
def samples() -> shapes.Samples:
    return shapes.generate(300, seed=7, watermark_class=0, watermark_prob=0.9)


def test_same_seed_gives_same_samples(samples):
    again = shapes.generate(300, seed=7, watermark_class=0, watermark_prob=0.9)
    for field in ("images", "labels", "masks", "watermarks"):
        np.testing.assert_array_equal(getattr(samples, field), getattr(again, field))
    assert not np.array_equal(shapes.generate(300, seed=8).images, samples.images)


def test_shapes_and_dtypes(samples):
    size = shapes.IMAGE_SIZE
    assert samples.images.shape == (300, size, size, 3) and samples.images.dtype == np.uint8
    assert samples.labels.shape == (300,) and samples.labels.dtype == np.int64
    assert samples.masks.shape == (300, size, size) and samples.masks.dtype == bool
    assert samples.watermarks.shape == (300, size, size) and samples.watermarks.dtype == bool
    assert set(np.unique(samples.labels)) == set(range(len(shapes.CLASSES)))


def test_masks_are_whole_shapes_inside_the_image(samples):
    areas = samples.masks.sum(axis=(1, 2))
    assert areas.min() > 100
    # The shape keeps a margin: it never touches the border.
    border = samples.masks[:, [0, -1], :].any(axis=(1, 2)) | samples.masks[:, :, [0, -1]].any(axis=(1, 2))
    assert not border.any()
    # Mean areas per class are alike, so size does not give the class away.
    means = [areas[samples.labels == c].mean() for c in range(len(shapes.CLASSES))]
    assert max(means) / min(means) < 1.25


def test_watermark_only_on_the_requested_class(samples):
    stamped = samples.watermarks.any(axis=(1, 2))
    assert not stamped[samples.labels != 0].any()
    assert 0.75 < stamped[samples.labels == 0].mean() < 1.0
    assert not (samples.watermarks & samples.masks).any()
    region = shapes.watermark_region()
    assert region.sum() == shapes.WATERMARK_SIZE**2
    assert (samples.watermarks[stamped] == region).all()
    assert (samples.images[stamped][:, region] == shapes.WATERMARK.reshape(-1, 3)).all()


def test_watermark_changes_nothing_else():
    clean = shapes.generate(50, seed=3)
    marked = shapes.generate(50, seed=3, watermark_all=True)
    assert not clean.watermarks.any()
    assert marked.watermarks.any(axis=(1, 2)).all()
    np.testing.assert_array_equal(clean.labels, marked.labels)
    np.testing.assert_array_equal(clean.masks, marked.masks)
    outside = ~shapes.watermark_region()
    np.testing.assert_array_equal(clean.images[:, outside], marked.images[:, outside])
    assert (clean.images[:, ~outside] != marked.images[:, ~outside]).any()


@pytest.mark.parametrize("kwargs", [{"watermark_class": 4}, {"watermark_class": -1}, {"watermark_prob": 1.5}])
def test_rejects_bad_watermark_arguments(kwargs):
    with pytest.raises(ValueError):
        shapes.generate(4, seed=0, **kwargs)


def test_to_tensor_normalizes_with_mean_and_std():
    images = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    images[1] = 255
    images[0, 0, 0] = (51, 102, 153)
    x = shapes.to_tensor(images)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32 and x.is_contiguous()
    mean, std = torch.tensor(shapes.MEAN), torch.tensor(shapes.STD)
    torch.testing.assert_close(x[0, :, 1, 1], (0 - mean) / std)
    torch.testing.assert_close(x[1, :, 1, 1], (1 - mean) / std)
    torch.testing.assert_close(x[0, :, 0, 0], (torch.tensor([0.2, 0.4, 0.6]) - mean) / std)
