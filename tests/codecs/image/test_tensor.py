"""The tensor codec: (C, H, W) arrays in model-input space become the engine's batch as they are, within the
image limits; a picture's tensor explains as the picture does."""

from __future__ import annotations

import numpy as np
import pytest

from service.codecs import codec_for
from service.codecs.image import ImageCodec
from service.codecs.image.tensor import TensorCodec
from service.codecs.options import OutputOptions
from service.errors import InvalidInput
from service.models import ModelPool, ModelSpec
from service.settings import Settings


@pytest.fixture(scope="module")
def loaded():
    spec = ModelSpec(name="demo", architecture="python:service.demo.net:shapes_cnn", num_classes=4, input_size=(32, 32))
    return ModelPool([spec], device="cpu").get("demo")


def test_the_field_picks_the_codec():
    assert isinstance(codec_for("image", "input"), TensorCodec)
    assert type(codec_for("image", "images")) is ImageCodec
    assert type(codec_for("image")) is ImageCodec


def test_decode_keeps_the_values(loaded):
    settings = Settings(device="cpu")
    values = [np.random.default_rng(i).standard_normal((3, 32, 32)).astype(np.float32) for i in range(2)]
    codec = TensorCodec()
    batch = codec.decode(codec.admit(values, loaded, settings, [], None), loaded, settings, None)
    np.testing.assert_array_equal(batch.x.numpy(), np.stack(values))
    assert [geometry.box for _, geometry in batch.items] == [(0.0, 0.0, 32.0, 32.0)] * 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            np.zeros((3, 32, 31), np.float32),
            r"input 0 is float32 \[3, 32, 31\]; model 'demo' takes float32 \[3, 32, 32\]",
        ),
        (np.zeros((3, 32, 32), np.float64), "input 0 is float64"),
        (np.full((3, 32, 32), np.inf, np.float32), "not finite"),
    ],
)
def test_admit_refuses_what_the_model_does_not_take(loaded, value, message):
    with pytest.raises(InvalidInput, match=message):
        TensorCodec().admit([value], loaded, Settings(device="cpu"), [], None)


def test_admit_applies_the_image_limits(loaded):
    value = np.zeros((3, 32, 32), np.float32)
    with pytest.raises(InvalidInput, match="3 inputs, over the limit of 2"):
        TensorCodec().admit([value] * 3, loaded, Settings(device="cpu", max_images=2), [], None)
    with pytest.raises(InvalidInput, match="overlay"):
        TensorCodec().admit([value], loaded, Settings(device="cpu"), [], OutputOptions(overlay=True))
