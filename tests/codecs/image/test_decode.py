"""service.codecs.image.decode: client bytes -> Pillow images, refusing broken, unsupported and oversized input."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile
from sklearn.datasets import load_sample_images

from service.codecs.image.decode import b64_to_bytes, decode_image, to_8_bit
from service.errors import InvalidImage, PayloadTooLarge

MB = 2**20


def decode(data: bytes, max_bytes: int = 16 * MB, max_pixels: int = 10**8) -> Image.Image:
    return decode_image(data, "images.0", max_bytes, max_pixels)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"quality": 90})])
def test_decodes_png_jpeg_and_webp(chelsea, image_bytes, fmt, options):
    image = decode(image_bytes(chelsea, fmt, **options))
    assert image.size == (451, 300)
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    if fmt == "PNG":
        np.testing.assert_array_equal(pixels, chelsea)  # lossless
    else:
        assert np.abs(pixels - chelsea).mean() < 4


def test_decodes_sklearn_photographs(image_bytes):
    for photo in load_sample_images().images:
        assert decode(image_bytes(photo, "JPEG")).size == (640, 427)


def test_decodes_other_modes(image_bytes):
    sixteen_bit = Image.fromarray((np.arange(64 * 64, dtype=np.uint16) * 16).reshape(64, 64))
    for image in (sixteen_bit, Image.new("LA", (9, 7)), Image.new("P", (9, 7)), Image.new("1", (9, 7))):
        assert decode(image_bytes(image, "PNG")).size == image.size
    assert decode(image_bytes(Image.new("CMYK", (9, 7)), "JPEG")).mode == "CMYK"


@pytest.mark.parametrize("layout", ["grey", "rgb"])
def test_16_bit_images_decode_as_their_8_bit_twins(chelsea, image_bytes, png16, layout):
    pixels = chelsea if layout == "rgb" else np.asarray(Image.fromarray(chelsea).convert("L"))
    eight, sixteen = decode(image_bytes(pixels, "PNG")), decode(png16(pixels.astype(np.uint16) * 257))
    assert sixteen.mode == eight.mode
    for mode in ("L", "RGB"):  # what the models and the overlay convert to
        np.testing.assert_array_equal(np.asarray(sixteen.convert(mode)), np.asarray(eight.convert(mode)))


def test_16_bit_grey_is_scaled_to_8_bits_not_clipped(png16):
    values = np.array([[0, 128, 129, 257, 32767, 32768, 65534, 65535]], np.uint16)
    expected = [[0, 0, 1, 1, 127, 128, 255, 255]]  # v / 257, rounded
    np.testing.assert_array_equal(np.asarray(decode(png16(values)).convert("L")), expected)
    for image in (  # modes Pillow has opened 16-bit grey PNGs as, and may again
        Image.frombytes("I;16B", (8, 1), values.astype(">u2").tobytes()),
        Image.fromarray(values.astype(np.int32)),
    ):
        np.testing.assert_array_equal(np.asarray(to_8_bit(image)), expected)
    assert np.asarray(to_8_bit(Image.fromarray(np.array([[-5, 70_000]], np.int32)))).tolist() == [[0, 255]]


def test_applies_the_exif_orientation(image_bytes):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = image_bytes(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif.tobytes())
    assert decode(data).size == (20, 40)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_invalid(chelsea, image_bytes, fmt):
    data = image_bytes(chelsea, fmt)
    with pytest.raises(InvalidImage) as caught:
        decode(data[: len(data) // 2])
    assert caught.value.field == "images.0" and caught.value.status == 422


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0" + b"\0" * 20],
    ids=["empty", "text", "png-signature-only", "jpeg-soi-only"],
)
def test_non_images_are_invalid(data):
    with pytest.raises(InvalidImage):
        decode(data)


def test_bytes_over_the_limit_are_too_large(chelsea, image_bytes):
    data = image_bytes(chelsea, "PNG")
    with pytest.raises(PayloadTooLarge) as caught:
        decode(data, max_bytes=len(data) - 1)
    assert caught.value.status == 413 and caught.value.field == "images.0"
    assert decode(data, max_bytes=len(data)).size == (451, 300)


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (5_000, 5_000)])
def test_decompression_bombs_are_refused_before_decoding(monkeypatch, width, height):
    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(PayloadTooLarge) as caught:
        decode(png_claiming(width, height), max_pixels=1_000_000)
    assert caught.value.status == 413


def test_the_pixel_limit_is_inclusive(image_bytes):
    data = image_bytes(np.zeros((100, 100, 3), np.uint8), "PNG")
    assert decode(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(PayloadTooLarge, match="100x100"):
        decode(data, max_pixels=9_999)


def test_base64_and_data_urls(chelsea, image_bytes):
    data = image_bytes(chelsea[:20, :30], "PNG")
    text = base64.b64encode(data).decode()
    assert b64_to_bytes(text, "images.0", MB) == data
    assert b64_to_bytes(f"data:image/png;base64,{text}", "images.0", MB) == data
    assert b64_to_bytes(f"  {text}\n", "images.0", MB) == data


@pytest.mark.parametrize("text", ["@@@", "abc", "data:image/png;base64,@@", "data:text/plain;base64,aGVsbG8="])
def test_bad_base64_is_invalid(text):
    with pytest.raises(InvalidImage) as caught:
        decode(b64_to_bytes(text, "images.3", MB))
    assert caught.value.field == "images.3"


def test_oversized_base64_is_refused_before_decoding_it():
    with pytest.raises(PayloadTooLarge):
        b64_to_bytes("A" * (4 * 1024 + 4), "images.0", 1024)  # not even valid base64 needs to be read
