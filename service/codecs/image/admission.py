"""Admission control: what a request will cost, from its image headers and output options, before any pixel
is decoded. A request over a limit gets 413, saying which limit and by how much.

Peak memory is the largest of three phases (decode, encode, response), each a sum of bytes-per-pixel terms.
The factors are VmHWM growth measured on CPU, one stage at a time in a fresh process (Pillow 13, numpy 2.4,
torch 2.14, FastAPI 0.165), rounded up; 16 kinds of whole request then measured 0.4 to 0.9 of their estimate
(tests/api/v1/test_admission.py measures one near the limit). The engine's per-pass activations are not in it:
memory_budget_bytes bounds those once per device, since a device runs one pass at a time.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

from PIL import ImageMode

from ...errors import InvalidInput, PayloadTooLarge
from ...explainers import Explainer
from ...explainers.postprocess import Normalize, Reduce
from ...models.spec import ModelSpec
from ...settings import Settings
from ..options import Filled, OutputOptions
from . import decode as image_codec
from .maps import STRIP_PIXELS

DEFAULTS: tuple[Reduce, Normalize] = ("max_abs", "minmax")  # an image's where the client gives none
B64 = 4 / 3
FIXED = 24 * 2**20  # objects, small tensors, allocator slack (a 64x48 request grew 8 MB)
REQUEST_COPIES = 4  # per encoded image byte: the body, its parsed base64 text, the decoded bytes
# Decoding one image and making its model input, over the decoded picture and its RGB copy: PNG and JPEG
# 0.7-1.7 B/px more (RGB 8.7 B/px, L 6.6), WebP 9.6 (libwebp's own buffer), 16-bit grey 12.4 (to_8_bit).
# GIF, BMP and TIFF (raw, LZW, deflate, JPEG, 16-bit RGB) grew as much as PNG did (RGB 9.4-9.6 B/px in all, a
# GIF 6.4); 16-bit grey and float TIFF 17.1, in all (to_8_bit).
DECODE_EXTRA = {"WEBP": 11.0, "deep": 13.0, "other": 2.5}
# Per input-size pixel and channel: the image tensors and the batch (2), and per map its attributions, the
# method's accumulators and the reduced and normalized maps (4).
ENGINE_COPIES = 2, 4
NORMALIZE = {"minmax": 3.3, "percentile": 5.3, "none": 1.2}  # floats per map float: resize + normalize
ARRAY = {"float32": 10.7, "float16": 7.4, "uint8": 13.0, "none": 0.0}  # encode_array, bytes per map value
ARRAY_BYTES = {"float32": 4, "float16": 2, "uint8": 1, "none": 0}
PNG = 3.0  # bytes per pixel, a bound: zlib stores incompressible RGB as is (photo overlays: 1.75)
CANVAS = 4  # Pillow keeps RGB in 4 bytes per pixel
STRIP = 80  # bytes per pixel of one strip of a drawing (75 measured), for STRIP_PIXELS pixels at most
RESPONSE_COPIES = 3.5  # per byte of the response's strings: them and dump_json's 2.25 (3.2 measured in all)


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    mode: str
    format: str
    nbytes: int  # encoded

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Work:
    """What a request asks of the encoder (its passes are the core's to count); output None is a predict."""

    input_size: tuple[int, int]
    channels: int
    map_channels: int = 1  # C with reduce="none" on a pixel-space method
    maps: int = 1  # explanations per image (one per method)
    output: Filled | None = None

    @classmethod
    def of(cls, methods: list[Explainer], spec: ModelSpec, given: OutputOptions | None) -> Work:
        if given is None:
            return cls(spec.input_size, spec.channels)
        output = given.filled(*DEFAULTS)
        pixel = any(e.capabilities.output == "pixel" for e in methods) and output.reduce == "none"
        return cls(spec.input_size, spec.channels, spec.channels if pixel else 1, len(methods), output)


def inspect(raw: list[bytes | str], settings: Settings) -> tuple[list[bytes], list[Header]]:
    """The images' bytes and headers, without decoding a pixel."""
    if len(raw) > settings.max_images:
        raise InvalidInput(f"{len(raw)} images, over the limit of {settings.max_images}", "images")
    data, headers = [], []
    for i, item in enumerate(raw):
        field = f"images.{i}"
        data.append(image_codec.b64_to_bytes(item, field, settings.max_image_bytes) if isinstance(item, str) else item)
        found = image_codec.read_header(data[-1], field, settings.max_image_bytes, settings.max_image_pixels)
        headers.append(Header(*found, len(data[-1])))
    return data, headers


def layout(mode: str) -> tuple[int, int]:
    """(bands, bytes per band) of a Pillow mode; an unknown mode counts as 4 bands of a byte."""
    try:
        info = ImageMode.getmode(mode)
    except KeyError:
        return 4, 1
    return len(info.bands), int(info.typestr[-1])


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel of a decoded Pillow image: 2 to 4 bands of 8 bits take 4 bytes."""
    bands, size = layout(mode)
    return 4 if bands > 1 else size


def at_original(output: OutputOptions | None) -> bool:
    return output is not None and (output.size == "original" or output.overlay)


def estimate_bytes(headers: list[Header], work: Work) -> int:
    """The request's peak memory over the process's memory before it: an upper bound."""
    h, w = work.input_size
    out = work.output
    fixed = FIXED + REQUEST_COPIES * sum(x.nbytes for x in headers)
    maps = work.maps if out is not None else 0
    fixed += (ENGINE_COPIES[0] + ENGINE_COPIES[1] * maps) * len(headers) * work.channels * h * w * 4
    keep = out is not None and out.overlay  # the pictures wait for their overlays
    pictures = [x.pixels * pixel_bytes(x.mode) * keep for x in headers]
    decode = sum(pictures) + max(decode_bytes(x, work.channels) for x in headers)
    if out is None:
        return int(fixed + decode)
    strings = [work.maps * output_chars(x, work, out) for x in headers]
    # Image by image, its picture goes once its overlay is drawn; its strings stay for the response.
    encode = max(
        sum(pictures[i:]) + sum(strings[: i + 1]) + encode_bytes(x.pixels, work.map_channels, out)
        for i, x in enumerate(headers)
    )
    return int(fixed + max(decode, encode, RESPONSE_COPIES * sum(strings)))


def decode_bytes(header: Header, channels: int) -> float:
    bands, size = layout(header.mode)
    extra = DECODE_EXTRA.get(header.format) or DECODE_EXTRA["deep" if bands == 1 and size > 1 else "other"]
    return header.pixels * (pixel_bytes(header.mode) + (4 if channels > 1 else 1) + extra)


def output_chars(header: Header, work: Work, out: OutputOptions) -> float:
    """Base64 characters of one map's outputs: the array, the heatmap PNG and the overlay PNG."""
    size = header.pixels if out.size == "original" else work.input_size[0] * work.input_size[1]
    array = work.map_channels * size * ARRAY_BYTES[out.saliency]
    return B64 * (array + PNG * size * out.heatmap + PNG * header.pixels * out.overlay)


def encode_bytes(pixels: int, channels: int, out: Filled) -> float:
    """Temporaries of one map's outputs at the original size (0 when there are none)."""
    if not at_original(out):
        return 0.0
    floats = channels * pixels
    normalize = NORMALIZE[out.normalize] * 4 * floats
    array = ARRAY[out.saliency] * floats if out.size == "original" else 0.0
    draw = 0.0
    if out.overlay or (out.heatmap and out.size == "original"):
        flat = 4 * (channels + 1) * pixels if channels > 1 else 0
        strip = STRIP * min(pixels, STRIP_PIXELS)
        png = PNG * pixels
        draw = flat + max(CANVAS * pixels + strip, CANVAS * pixels + 2 * png, (1 + 2 * B64) * png)
    return max(normalize, 4 * floats + max(array, draw))  # the map at the original size stays meanwhile


def admit(headers: list[Header], work: Work, settings: Settings) -> None:
    """Raises PayloadTooLarge when the request is over a limit on output pixels or memory."""
    if at_original(work.output):
        pixels = sum(x.pixels for x in headers)
        if pixels > settings.max_output_pixels:
            raise PayloadTooLarge(
                f"outputs at the original size are {pixels:,} pixels, over the {settings.max_output_pixels:,} "
                f"limit (max_output_pixels) by {pixels - settings.max_output_pixels:,}; ask for size=input "
                "without overlay, or send fewer or smaller images",
                "output",
            )
    peak = estimate_bytes(headers, work)
    if peak > settings.max_request_bytes:
        advice = "ask for size=input without overlay, or " if at_original(work.output) else ""
        raise PayloadTooLarge(
            f"estimated peak memory {size(peak)} is over the {size(settings.max_request_bytes)} limit "
            f"(max_request_bytes) by {size(peak - settings.max_request_bytes)}; {advice}send fewer or smaller images",
            "images",
        )


def size(n: float) -> str:
    """Bytes for people: 512 MiB, 2.3 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{int(n)} B"


TRIM_FROM_PIXELS = 1_000_000


def release_freed_memory(pixels: int) -> None:
    """Hands memory freed by big temporaries (of an image of `pixels`) back to the OS (glibc); else a no-op.

    Without it the heap keeps freed blocks and the peak ratchets up image by image, past any estimate: four
    6 MP maps at the original size grew VmHWM by 353 MB instead of 185 MB. A fixed M_MMAP_THRESHOLD would do
    the same but doubled the engine's time (an mmap per activation). Small images skip it: their temporaries
    cannot move the peak much, and a trim per small image cost 10-20 % of the CPU per image of 16 concurrent
    small requests (bench/batching.py).
    """
    if pixels < TRIM_FROM_PIXELS:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
