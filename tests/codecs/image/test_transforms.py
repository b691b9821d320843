"""service.codecs.image.transforms: image -> normalized model input, and the geometry of the region the model saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from service.codecs.image.transforms import Geometry, to_input

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def bands(width: int, height: int, vertical: bool) -> Image.Image:
    """Red | green | blue thirds; the middle band is exactly the centre square when the image is 2:1."""
    pixels = np.zeros((height, width, 3), np.uint8)
    if vertical:
        quarter = width // 4
        pixels[:, :quarter, 0] = pixels[:, quarter : width - quarter, 1] = pixels[:, width - quarter :, 2] = 255
    else:
        quarter = height // 4
        pixels[:quarter, :, 0] = pixels[quarter : height - quarter, :, 1] = pixels[height - quarter :, :, 2] = 255
    return Image.fromarray(pixels)


def test_exact_resize_normalizes_each_channel(make_spec):
    spec = make_spec(input_size=(32, 48), mean=MEAN, std=STD)
    tensor, geometry = to_input(Image.new("RGB", (100, 50), (255, 0, 128)), spec)
    assert tensor.shape == (3, 32, 48) and tensor.dtype == torch.float32  # input_size is (height, width)
    expected = [(1.0 - MEAN[0]) / STD[0], (0.0 - MEAN[1]) / STD[1], (128 / 255 - MEAN[2]) / STD[2]]
    torch.testing.assert_close(tensor, torch.tensor(expected).view(3, 1, 1).expand(3, 32, 48), rtol=0, atol=1e-6)
    assert geometry == Geometry(width=100, height=50, box=(0.0, 0.0, 100.0, 50.0))


def test_exact_resize_stretches_the_whole_image(make_spec):
    tensor, _ = to_input(bands(100, 50, vertical=True), make_spec(input_size=(32, 32), mean=(0, 0, 0), std=(1, 1, 1)))
    assert tensor[0, :, :6].min() == 1.0  # the red quarter is still there on the left
    assert tensor[2, :, -6:].min() == 1.0  # and the blue quarter on the right


def test_grayscale_models_get_one_channel(make_spec):
    spec = make_spec(mean=(0.5,), std=(0.25,))
    tensor, _ = to_input(Image.new("RGB", (40, 40), (255, 255, 255)), spec)
    assert tensor.shape == (1, 32, 32)
    torch.testing.assert_close(tensor, torch.full((1, 32, 32), 2.0))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16"])
def test_any_image_mode_becomes_rgb(make_spec, mode):
    tensor, _ = to_input(Image.new(mode, (20, 10)), make_spec())
    assert tensor.shape == (3, 32, 32) and torch.isfinite(tensor).all()


@pytest.mark.parametrize(
    ("width", "height", "vertical", "box"),
    [(100, 50, True, (25.0, 0.0, 75.0, 50.0)), (50, 100, False, (0.0, 25.0, 50.0, 75.0))],
    ids=["wide", "tall"],
)
def test_shorter_side_takes_the_centre_crop(make_spec, width, height, vertical, box):
    spec = make_spec(input_size=(32, 32), resize="shorter_side", mean=(0, 0, 0), std=(1, 1, 1))
    tensor, geometry = to_input(bands(width, height, vertical), spec)
    assert geometry == Geometry(width=width, height=height, box=box)
    # The model sees only the green middle; at most the outermost row/column blends with a neighbour band.
    inner = tensor[:, 1:-1, 1:-1]
    torch.testing.assert_close(inner, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand_as(inner))
    assert tensor[1].min() > 0.5


def test_shorter_side_with_a_non_square_input(make_spec):
    spec = make_spec(input_size=(32, 64), resize="shorter_side")
    tensor, geometry = to_input(Image.new("RGB", (100, 100)), spec)
    assert tensor.shape == (3, 32, 64)
    assert geometry.box == (0.0, 25.0, 100.0, 75.0)  # the model's 2:1 window, centred


def test_shorter_side_upscales_small_images(make_spec):
    spec = make_spec(input_size=(64, 64), resize="shorter_side")
    tensor, geometry = to_input(Image.new("RGB", (40, 20)), spec)
    assert tensor.shape == (3, 64, 64)
    assert geometry.box == (10.0, 0.0, 30.0, 20.0)


def test_shorter_side_of_an_image_with_the_input_aspect_is_the_whole_image(make_spec):
    spec = make_spec(input_size=(32, 32), resize="shorter_side", mean=(0, 0, 0), std=(1, 1, 1))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    tensor, geometry = to_input(image, spec)
    assert geometry.box == (0.0, 0.0, 32.0, 32.0)
    torch.testing.assert_close(tensor, torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
