"""The client's conversions: inputs as the server will read them, and the service's arrays decoded exactly."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from saliency_client import ServiceError
from saliency_client.convert import decode_array, image_bytes, image_list

from service.codecs.arrays import encode_array


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)


def test_every_input_kind_sends_the_same_pixels(tmp_path, rgb):
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    kinds = [str(path), path, path.read_bytes(), bytearray(path.read_bytes()), Image.fromarray(rgb), rgb]
    for kind in kinds:
        assert np.array_equal(pixels(image_bytes(kind)), rgb), type(kind)
    assert image_bytes(str(path)) == path.read_bytes()  # files go as they are (a JPEG stays a JPEG)


@pytest.mark.parametrize("shape, mode", [((7, 5), "L"), ((7, 5, 1), "L"), ((7, 5, 4), "RGBA")])
def test_grey_and_rgba_arrays(shape, mode):
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    image = Image.open(io.BytesIO(image_bytes(array)))
    assert image.mode == mode and np.array_equal(np.asarray(image), array.squeeze() if mode == "L" else array)


def test_pil_modes_png_cannot_hold_become_rgb(rgb):
    cmyk = Image.fromarray(rgb).convert("CMYK")
    sent = Image.open(io.BytesIO(image_bytes(cmyk)))
    assert sent.mode == "RGB" and np.array_equal(np.asarray(sent), np.asarray(cmyk.convert("RGB")))


@pytest.mark.parametrize(
    "image, says",
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "image arrays must be uint8, not float32"),
        (np.zeros((3, 4, 5), dtype=np.uint8), "channels last), not 3x4x5"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "not 2x4x4x3"),
        (12, "an image cannot be a int"),
        ("/nonexistent/x.png", "cannot read /nonexistent/x.png: No such file or directory"),
    ],
)
def test_inputs_that_cannot_be_sent_raise_service_error_naming_the_image(image, says):
    with pytest.raises(ServiceError) as raised:
        image_list([b"fine", image])
    error = raised.value
    assert (error.code, error.field, error.status) == ("invalid_input", "images.1", None)
    assert says in error.message


def test_one_image_or_a_list():
    assert image_list(b"png") == [base64.b64encode(b"png").decode()]
    assert image_list([b"a", b"b"]) == [base64.b64encode(b"a").decode(), base64.b64encode(b"b").decode()]


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 6, 5), (11,)])
@pytest.mark.parametrize("signed", [False, True])
def test_arrays_decode_exactly_what_the_service_encodes(dtype, shape, signed):
    values = np.random.default_rng(1).uniform(-1 if signed else 0, 1, shape).astype(np.float32)
    encoded = encode_array(values, dtype, signed)  # the server's own encoder
    decoded = decode_array(encoded)
    assert decoded.dtype == np.dtype(dtype) and decoded.shape == shape and decoded.flags.writeable
    if dtype == "uint8":
        expected = np.rint(((values + 1) / 2 if signed else values) * 255).astype(np.uint8)
    else:
        expected = values.astype(dtype)
    assert np.array_equal(decoded, expected)


@pytest.mark.parametrize(
    "encoded, says",
    [
        ({"shape": [2, 2], "dtype": "float64", "data": ""}, "unknown array dtype 'float64'"),
        ({"shape": [2, 2], "dtype": "float32", "data": base64.b64encode(bytes(12)).decode()}, "has 12 bytes"),
    ],
)
def test_arrays_that_do_not_add_up_are_invalid_responses(encoded, says):
    with pytest.raises(ServiceError) as raised:
        decode_array(encoded)
    assert raised.value.code == "invalid_response" and says in raised.value.message
