"""Channel reduction and per-image normalization on hand-made values."""

import pytest
import torch

from service.explainers.postprocess import normalize, reduce_channels

# one image, channels (3, -4) at pixel 0 and (0, 0) at pixel 1, (-1, 2) at pixel 2
PIXELS = torch.tensor([[[[3.0, 0.0, -1.0]], [[-4.0, 0.0, 2.0]]]])  # (1, 2, 1, 3)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("max_abs", [4.0, 0.0, 2.0]),
        ("sum_abs", [7.0, 0.0, 3.0]),
        ("sum", [-1.0, 0.0, 1.0]),
        ("l2", [5.0, 0.0, 5.0**0.5]),
    ],
)
def test_reduce_channels(how, expected):
    reduced = reduce_channels(PIXELS, how)
    assert reduced.shape == (1, 1, 3)
    torch.testing.assert_close(reduced, torch.tensor([[expected]]))


def test_reduce_none_and_cam_maps_pass_through():
    assert torch.equal(reduce_channels(PIXELS, "none"), PIXELS)
    cam = torch.rand(2, 5, 5)
    for how in ("max_abs", "sum_abs", "sum", "l2", "none"):
        assert torch.equal(reduce_channels(cam, how), cam)


def test_unknown_options_are_errors():
    with pytest.raises(ValueError):
        reduce_channels(PIXELS, "mean")
    with pytest.raises(ValueError):
        normalize(PIXELS[:, 0], "zscore")


def test_minmax_is_per_image():
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[-10.0, -6.0], [-8.0, -2.0]]])
    expected = torch.tensor([[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.5], [0.25, 1.0]]])
    torch.testing.assert_close(normalize(maps, "minmax"), expected)


def test_minmax_of_a_constant_map_is_zeros_not_nan():
    maps = torch.stack([torch.full((3, 3), 7.0), torch.zeros(3, 3), torch.arange(9.0).view(3, 3)])
    scaled = normalize(maps, "minmax")
    assert torch.equal(scaled[:2], torch.zeros(2, 3, 3))
    torch.testing.assert_close(scaled[2], torch.arange(9.0).view(3, 3) / 8)


def test_percentile_scales_by_the_995th_percentile_of_magnitudes_keeping_sign():
    values = torch.arange(1.0, 1001.0)
    values[995] = 995.0  # a tie at the 99.5th percentile: nearest-rank and interpolated percentiles agree
    values[::2] *= -1  # odd positions negative: the magnitudes stay the same
    scaled = normalize(values.view(1, 20, 50), "percentile").flatten()
    torch.testing.assert_close(scaled[:996], values[:996] / 995)
    assert torch.equal(scaled[996:], torch.sign(values[996:]))  # above the percentile: clipped to +-1
    assert torch.equal(torch.sign(scaled), torch.sign(values))


def test_percentile_is_per_image_and_takes_the_percentile_argument():
    ramp = torch.arange(1.0, 101.0)
    ramp[50] = 50.0  # 50 twice: the median is 50 by any definition
    maps = torch.stack([ramp.view(10, 10), -3 * ramp.view(10, 10)])
    scaled = normalize(maps, "percentile", percentile=50)
    # half of each image is clipped, per image whatever its scale and sign
    torch.testing.assert_close(scaled[0], (maps[0] / 50).clamp(-1, 1))
    torch.testing.assert_close(scaled[1], (maps[1] / 150).clamp(-1, 1))


def test_percentile_of_sparse_and_zero_maps():
    sparse = torch.zeros(1, 20, 50)
    sparse[0, 3, 4], sparse[0, 7, 8] = -5.0, 2.5  # 998 zeros: the 99.5th percentile of |v| is 0
    scaled = normalize(torch.cat([sparse, torch.zeros(1, 20, 50)]), "percentile")
    torch.testing.assert_close(scaled[0], sparse[0] / 5)  # falls back to the largest magnitude
    assert torch.equal(scaled[1], torch.zeros(20, 50))


def test_normalize_none_and_pixel_maps():
    maps = torch.randn(2, 3, 4, 4)
    assert torch.equal(normalize(maps, "none"), maps)
    scaled = normalize(maps, "minmax")
    assert scaled.shape == maps.shape
    for image, original in zip(scaled, maps, strict=True):  # per image across all its channels
        torch.testing.assert_close(image, (original - original.min()) / (original.max() - original.min()))
