"""service.codecs.image.maps: typed arrays, heatmap and overlay PNGs, and maps back at the original size."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from service.codecs.image.maps import heatmap_png, overlay_png, to_original_size
from service.codecs.image.transforms import Geometry, to_input
from service.codecs.options import COLORMAPS
from service.models.spec import ModelSpec

DTYPES = {"float32": "<f4", "float16": "<f2", "uint8": "u1"}


def decoded(encoded: dict) -> np.ndarray:
    data = base64.b64decode(encoded["data"])
    return np.frombuffer(data, dtype=DTYPES[encoded["dtype"]]).reshape(encoded["shape"])


def png_pixels(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode) == ("PNG", "RGB")
    return np.asarray(image)


@pytest.mark.parametrize("colormap", COLORMAPS)
def test_heatmap_colours_come_from_the_matplotlib_colormap(colormap):
    # Unsigned maps are min-max scaled for display: 2, 4, 6, 10 -> 0, 0.25, 0.5, 1.
    values = np.array([[2.0, 4.0, 6.0, 10.0], [10.0, 6.0, 4.0, 2.0]], dtype=np.float32)
    pixels = png_pixels(heatmap_png(values, colormap, signed=False))
    assert pixels.shape == (2, 4, 3)
    unit = np.array([[0.0, 0.25, 0.5, 1.0], [1.0, 0.5, 0.25, 0.0]])
    np.testing.assert_array_equal(pixels, colormaps[colormap](unit, bytes=True)[..., :3])


def test_signed_heatmaps_put_zero_at_the_middle_colour():
    values = np.array([[-4.0, 0.0, 2.0, 4.0]], dtype=np.float32)  # divided by the peak |4|, then mapped to [0, 1]
    pixels = png_pixels(heatmap_png(values, "RdBu_r", signed=True))
    np.testing.assert_array_equal(pixels, colormaps["RdBu_r"]([[0.0, 0.5, 0.75, 1.0]], bytes=True)[..., :3])


def test_a_constant_map_is_drawn_at_the_bottom_of_the_colormap():
    pixels = png_pixels(heatmap_png(np.full((3, 3), 7.0, np.float32), "jet", signed=False))
    assert (pixels == colormaps["jet"](0.0, bytes=True)[:3]).all()


def test_overlay_blends_the_heatmap_onto_the_original_image():
    image = Image.new("RGB", (6, 4), (200, 100, 50))
    values = np.zeros((4, 6), dtype=np.float32)
    values[1, 2] = 1.0  # the peak: jet(1.0) = (127, 0, 0)
    pixels = png_pixels(overlay_png(image, values, "jet", alpha=0.3, signed=False))
    assert pixels.shape == (4, 6, 3)
    assert tuple(colormaps["jet"](1.0, bytes=True)[:3]) == (127, 0, 0)
    # 0.7 * (200, 100, 50) + 0.3 * (127, 0, 0) = (178.1, 70, 35)
    assert tuple(pixels[1, 2]) == (178, 70, 35)
    # Elsewhere the map is at its minimum: jet(0.0) = (0, 0, 127) -> (140, 70, 73.1)
    assert tuple(pixels[0, 0]) == (140, 70, 73)


@pytest.mark.parametrize(("alpha", "expected"), [(0.0, (200, 100, 50)), (1.0, (127, 0, 0))])
def test_overlay_alpha_ends(alpha, expected):
    image = Image.new("RGB", (2, 2), (200, 100, 50))
    values = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)  # pixel (1, 1) is at the peak
    pixels = png_pixels(overlay_png(image, values, "jet", alpha=alpha, signed=False))
    assert tuple(pixels[1, 1]) == expected


def test_overlay_takes_any_image_mode_and_keeps_its_size(chelsea):
    values = np.random.default_rng(0).random((300, 451), dtype=np.float32)
    for image in (
        Image.fromarray(chelsea),
        Image.fromarray(chelsea).convert("L"),
        Image.fromarray(chelsea).convert("RGBA"),
    ):
        assert png_pixels(overlay_png(image, values, "viridis", 0.5, signed=False)).shape == (300, 451, 3)


@pytest.mark.parametrize("signed", [False, True])
def test_drawing_in_strips_is_drawing_the_whole_image_at_once(chelsea, monkeypatch, signed):
    # Strips bound the float temporaries of big images; the display scale stays the whole map's.
    image = Image.fromarray(chelsea).convert("P")
    values = np.random.default_rng(0).standard_normal((300, 451)).astype(np.float32)
    whole = png_pixels(overlay_png(image, values, "RdBu_r", 0.4, signed))
    if signed:
        unit = np.clip(values / np.abs(values).max(), -1, 1) / 2 + 0.5
    else:
        unit = (values - values.min()) / (values.max() - values.min())
    heat = colormaps["RdBu_r"](unit, bytes=True)[..., :3].astype(np.float32)
    expected = np.clip(np.rint(0.6 * np.asarray(image.convert("RGB"), np.float32) + 0.4 * heat), 0, 255)
    np.testing.assert_array_equal(whole, expected.astype(np.uint8))
    monkeypatch.setattr("service.codecs.image.maps.STRIP_PIXELS", 1000)  # two rows a strip
    np.testing.assert_array_equal(png_pixels(overlay_png(image, values, "RdBu_r", 0.4, signed)), whole)
    np.testing.assert_array_equal(png_pixels(heatmap_png(values, "RdBu_r", signed)), heat.astype(np.uint8))


def test_to_original_size_for_an_exact_resize():
    geometry = Geometry(width=100, height=50, box=(0.0, 0.0, 100.0, 50.0))
    out = to_original_size(torch.ones(64, 64), geometry)
    assert out.shape == (50, 100)
    torch.testing.assert_close(out, torch.ones(50, 100))
    # Leading dimensions (channels) are kept.
    assert to_original_size(torch.ones(3, 64, 64), geometry).shape == (3, 50, 100)


def test_to_original_size_keeps_left_and_right_apart():
    geometry = Geometry(width=100, height=50, box=(0.0, 0.0, 100.0, 50.0))
    halves = torch.zeros(64, 64)
    halves[:, 32:] = 1.0
    out = to_original_size(halves, geometry)
    assert (out[:, :49] == 0).all() and (out[:, 51:] == 1).all()


def spec(resize: str, size: tuple[int, int] = (64, 64)) -> ModelSpec:
    return ModelSpec(name="m", architecture="torchvision:resnet18", num_classes=4, input_size=size, resize=resize)


@pytest.mark.parametrize(
    ("width", "height", "inside"),
    [
        (100, 50, (slice(0, 50), slice(25, 75))),  # wide: the centre 50 x 50 columns
        (50, 100, (slice(25, 75), slice(0, 50))),  # tall: the centre rows
    ],
)
def test_to_original_size_puts_a_shorter_side_crop_back_in_its_box(width, height, inside):
    _, geometry = to_input(Image.new("RGB", (width, height)), spec("shorter_side"))
    out = to_original_size(torch.ones(3, 64, 64), geometry)
    assert out.shape == (3, height, width)
    expected = torch.zeros(3, height, width)
    expected[(slice(None), *inside)] = 1.0
    torch.testing.assert_close(out, expected)


def test_to_original_size_with_a_fractional_crop_box():
    _, geometry = to_input(Image.new("RGB", (101, 50)), spec("shorter_side"))
    assert geometry.box == (25.5, 0.0, 75.5, 50.0)
    out = to_original_size(torch.ones(64, 64), geometry)
    assert out.shape == (50, 101)
    columns = out.sum(dim=0)
    assert (columns[:25] == 0).all() and (columns[77:] == 0).all()
    assert int((columns == 50).sum()) == 50  # one 50-pixel-wide block of ones
