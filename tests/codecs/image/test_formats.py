"""GIF, BMP and TIFF, and wide (16-bit, float) pixels: exact values after decoding, the first frame only, and
hostile files (10,000 frames, a page that claims 10^10 pixels, a cycle of pages, corrupt tags) refused or read
in bounded time, with only the first frame's pixels ever decoded."""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest
import tifffile
from PIL import GifImagePlugin, Image, ImageFile, TiffImagePlugin

from service.codecs.image.decode import decode_image, read_header
from service.errors import InvalidImage, PayloadTooLarge

MB = 2**20


def decode(data: bytes, max_pixels: int = 10**8) -> Image.Image:
    return decode_image(data, "images.0", 64 * MB, max_pixels)


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def photo(chelsea) -> np.ndarray:
    return np.ascontiguousarray(chelsea[:60, :80])


@pytest.fixture
def only_frame_zero(monkeypatch) -> list[int]:
    """The frames anything seeks to while the test runs (Pillow decodes a frame only after seeking to it)."""
    frames: list[int] = []
    for plugin in (GifImagePlugin.GifImageFile, TiffImagePlugin.TiffImageFile):
        real = plugin.seek

        def spy(self, frame, real=real):
            frames.append(frame)
            return real(self, frame)

        monkeypatch.setattr(plugin, "seek", spy)
    return frames


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("TIFF", {"compression": "tiff_adobe_deflate"}),
        ("TIFF", {"compression": "packbits"}),
    ],
    ids=["bmp", "tiff-raw", "tiff-lzw", "tiff-deflate", "tiff-packbits"],
)
def test_lossless_formats_decode_to_the_exact_pixels(photo, image_bytes, fmt, options):
    data = image_bytes(photo, fmt, **options)
    assert read_header(data, "images.0", MB, 10**6) == (80, 60, "RGB", fmt)
    np.testing.assert_array_equal(np.asarray(decode(data)), photo)


def test_palette_bmp_and_jpeg_in_tiff(photo, image_bytes):
    palette = Image.fromarray(photo).quantize(32)
    np.testing.assert_array_equal(rgb(decode(image_bytes(palette, "BMP"))), rgb(palette))
    jpeg = rgb(decode(image_bytes(photo, "TIFF", compression="jpeg", quality=95)))
    assert np.abs(jpeg.astype(int) - photo).mean() < 3


def test_a_gif_gives_its_first_frame(photo, only_frame_zero):
    frames = [Image.fromarray(np.roll(photo, 20 * i, axis=1)).quantize(64) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 3  # an animation indeed
    only_frame_zero.clear()
    np.testing.assert_array_equal(rgb(decode(buf.getvalue())), rgb(frames[0]))
    assert set(only_frame_zero) <= {0}


def test_a_multi_page_tiff_gives_its_first_page(photo, only_frame_zero):
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "TIFF", save_all=True, append_images=[Image.fromarray(photo[::-1])])
    only_frame_zero.clear()
    np.testing.assert_array_equal(rgb(decode(buf.getvalue())), photo)
    assert set(only_frame_zero) <= {0}


def tiff(width: int, height: int, pixels: bytes, *more_pages: dict[int, tuple[int, list[int]]], loop: bool = False):
    """A little-endian TIFF written field by field: page 1 is `width` x `height` 8-bit grey `pixels`; each of
    `more_pages` is {tag: (type, values)} (types 3 SHORT, 4 LONG, 7 UNDEFINED); `loop` points the last page
    back at the first."""
    first = {256: (4, [width]), 257: (4, [height]), 258: (3, [8]), 259: (3, [1]), 262: (3, [1])}
    first |= {273: (4, [0]), 277: (3, [1]), 278: (4, [height]), 279: (4, [len(pixels)])}
    pages = [first, *more_pages]
    offsets, at = [], 8
    for page in pages:
        offsets.append(at)
        at += 2 + 12 * len(page) + 4
    first[273] = (4, [at])  # the pixels follow the directories
    out = bytearray(b"II*\0" + struct.pack("<I", 8))
    for i, page in enumerate(pages):
        out += struct.pack("<H", len(page))
        for tag in sorted(page):
            kind, values = page[tag]
            raw = b"".join(struct.pack({3: "<H", 4: "<I", 7: "<B"}[kind], v) for v in values)
            assert len(raw) <= 4
            out += struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\0")
        following = offsets[i + 1] if i + 1 < len(pages) else (8 if loop else 0)
        out += struct.pack("<I", following)
    return bytes(out + pixels)


def huge_page(side: int) -> dict[int, tuple[int, list[int]]]:
    return {256: (4, [side]), 257: (4, [side]), 258: (3, [8]), 259: (3, [1]), 262: (3, [1]), 273: (4, [8])}


def test_the_hand_written_tiff_is_read_exactly():
    image = decode(tiff(4, 3, bytes(range(0, 240, 20))))
    assert np.asarray(image).tolist() == [[0, 20, 40, 60], [80, 100, 120, 140], [160, 180, 200, 220]]


@pytest.mark.parametrize("loop", [False, True], ids=["then-a-huge-page", "and-a-cycle-of-pages"])
def test_a_tiff_page_bomb_costs_only_its_first_page(only_frame_zero, loop):
    """Page 2 claims 100,000 x 100,000 pixels (10 GB); with `loop` the pages also point back at page 1."""
    data = tiff(4, 3, bytes(range(12)), huge_page(100_000), loop=loop)
    only_frame_zero.clear()
    started = time.perf_counter()
    assert np.asarray(decode(data, max_pixels=1_000_000)).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert time.perf_counter() - started < 0.5
    assert set(only_frame_zero) <= {0}


def test_a_gif_of_ten_thousand_frames_decodes_one(photo, only_frame_zero):
    frames = [Image.new("P", (64, 48), i % 2) for i in range(2)]
    for i, frame in enumerate(frames):
        frame.putpalette([0, 0, 0, 255, 255, 255] * 128)
        frame.paste(1 - i, (8, 8, 40, 30))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=10, disposal=1)
    two = buf.getvalue()
    # Frame 2's blocks (graphic control extension, descriptor, pixels) repeated: 10,000 frames in ~1 MB.
    second = two.rindex(b"\x21\xf9\x04")
    data = two[:-1] + two[second:-1] * 9_998 + b";"
    assert 500_000 < len(data) < 2 * MB
    only_frame_zero.clear()
    started = time.perf_counter()
    image = decode(data)
    assert time.perf_counter() - started < 0.5
    np.testing.assert_array_equal(rgb(image), rgb(frames[0]))
    assert set(only_frame_zero) <= {0}
    assert Image.open(io.BytesIO(data)).n_frames == 10_000  # what the file holds, counted after the fact


def test_16_bit_and_32_bit_grey_tiffs_are_scaled_by_65535(image_bytes):
    values = np.array([[0, 128, 129, 257, 32767, 32768, 65534, 65535]], np.uint16)
    expected = [[0, 0, 1, 1, 127, 128, 255, 255]]  # round(v / 65535 * 255) = round(v / 257)
    little = decode(image_bytes(Image.fromarray(values), "TIFF"))
    big = decode(image_bytes(Image.frombytes("I;16B", (8, 1), values.astype(">u2").tobytes()), "TIFF"))
    wide = np.array([[-5, 0, 257, 65535, 70_000]], np.int32)
    for image, want in (
        (little, expected),
        (big, expected),
        (decode(image_bytes(Image.fromarray(wide), "TIFF")), None),
    ):
        assert image.mode == "L"
        assert np.asarray(image).tolist() == (want or [[0, 0, 1, 255, 255]])  # "I": clipped to 16 bits first


def test_float_tiffs_are_read_as_0_to_1_clipped(image_bytes):
    values = np.array([[-1.0, 0.0, 0.2, 0.5, 0.998, 1.0, 2.0, np.nan, np.inf, -np.inf]], np.float32)
    image = decode(image_bytes(Image.fromarray(values), "TIFF"))
    assert image.mode == "L"
    # v in [0, 1] times 255, rounded half to even (0.5 -> 127.5 -> 128); outside clipped; NaN is 0.
    assert np.asarray(image).tolist() == [[0, 0, 51, 128, 254, 255, 255, 0, 255, 0]]


def test_16_bit_rgb_tiff_keeps_the_high_byte():
    values = np.array([[[0, 257, 65535], [32768, 128, 65279]]], np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, values, photometric="rgb", compression="zlib")
    image = decode(buf.getvalue())
    assert image.mode == "RGB"
    assert np.asarray(image).tolist() == [[[0, 1, 255], [128, 0, 254]]]  # v // 256: within one level of v / 257


def with_size(data: bytes, width: int, height: int, fmt: str) -> bytes:
    """The file with its header's size rewritten (the pixels stay those of the small image)."""
    if fmt == "BMP":
        return data[:18] + struct.pack("<ii", width, height) + data[26:]
    assert fmt == "GIF"  # the logical screen and the first image descriptor
    descriptor = data.index(b"\x2c")
    data = data[:6] + struct.pack("<HH", width, height) + data[10:]
    return data[: descriptor + 5] + struct.pack("<HH", width, height) + data[descriptor + 9 :]


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_headers_over_the_pixel_limit_are_refused_before_decoding(monkeypatch, image_bytes, fmt):
    if fmt == "TIFF":
        data = tiff(4, 3, bytes(12), huge_page(1))[:8] + tiff(5_000, 5_000, bytes(12))[8:]
    else:
        data = with_size(image_bytes(Image.new("P" if fmt == "GIF" else "RGB", (4, 3)), fmt), 5_000, 5_000, fmt)
    assert read_header(data, "images.0", MB, 10**9)[:2] == (5_000, 5_000)

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(PayloadTooLarge, match="5000x5000"):
        decode(data, max_pixels=1_000_000)


@pytest.mark.parametrize(
    "tags",
    [{273: (7, [ord("z")])}, {273: (4, [0xFFFFFFF0])}, {278: (4, [0])}],
    ids=["offsets-as-bytes", "offset-past-the-end", "no-rows-per-strip"],
)
def test_corrupt_tiff_tags_are_invalid_images(tags):
    data = bytearray(tiff(4, 3, bytes(12)))
    for tag, (kind, (value,)) in tags.items():  # rewrite the entry in place: tag, type, count 1, value
        at = data.index(struct.pack("<H", tag), 10)
        data[at : at + 12] = struct.pack("<HHII", tag, kind, 1, value)
    with pytest.raises(InvalidImage) as caught:
        decode(bytes(data))
    assert caught.value.status == 422 and caught.value.field == "images.0"


def test_tiff_modes_without_a_conversion_are_refused(image_bytes):
    with pytest.raises(InvalidImage, match="TIFF images in mode LAB are not supported"):
        decode(image_bytes(Image.new("LAB", (4, 3)), "TIFF"))


@pytest.mark.parametrize("fmt", ["PCX", "PPM", "TGA", "ICO"])
def test_other_formats_are_refused(photo, image_bytes, fmt):
    with pytest.raises(InvalidImage, match="supported format"):
        decode(image_bytes(photo, fmt))
