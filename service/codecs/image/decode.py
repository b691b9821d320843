"""Client bytes -> Pillow images, refusing what is not a whole, reasonably sized image in a known format.

Multi-frame files (animated GIF, WebP and PNG, multi-page TIFF) give their first frame: Pillow reads only the
first frame's header on open and decodes only that frame, so the other frames cost nothing, however many.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ...errors import InvalidImage, PayloadTooLarge

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Modes these formats open as that become the RGB or grey picture they show; TIFF's LAB and premultiplied
# grey+alpha ("La") have no conversion in Pillow.
MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "F", *SIXTEEN_BIT_GREY}
_DATA_URL = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,", re.ASCII)


def b64_to_bytes(text: str, field: str, max_bytes: int) -> bytes:
    """Plain base64 or a data: URL."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    if len(text) * 3 // 4 > max_bytes:
        raise PayloadTooLarge(f"image is over the {max_bytes}-byte limit", field)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("not valid base64 (or a data:image/...;base64, URL)", field) from None


def to_8_bit(image: Image.Image) -> Image.Image:
    """Wide greyscale as "L" by its real range: 16-bit v / 65535 and float v (clipped to [0, 1]), times 255,
    rounded. Pillow's convert("L") would clip both at 255: a white picture, or a black one for floats.

    "I" (32-bit) is read as 16-bit values, clipped to [0, 65535]; NaN is 0. Pillow reads 16-bit RGB(A) and
    grey+alpha as 8-bit already (their high byte); only grey stays wide.
    """
    if image.mode == "F":
        values = np.array(image, dtype=np.float32)  # one copy, then in place: a float image is 4 B/px each
        np.nan_to_num(values, copy=False, nan=0.0)
        np.clip(values, 0.0, 1.0, out=values)
        values *= 255
        return Image.fromarray(np.rint(values, out=values).astype(np.uint8))
    if image.mode not in SIXTEEN_BIT_GREY:
        return image
    values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)  # "I" is 32-bit signed
    return Image.fromarray(((values + 128) // 257).astype(np.uint8))


@contextmanager
def opened(data: bytes, field: str, max_bytes: int, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    """The image with only its header read, refused when too large; decoding errors become client errors."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is {len(data)} bytes, over the {max_bytes}-byte limit", field)
    if not data:
        raise InvalidImage("empty image", field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                # The header gives the size: refuse decompression bombs before decoding a single pixel.
                if image.width * image.height > max_pixels:
                    raise PayloadTooLarge(
                        f"image is {image.width}x{image.height} pixels, over the {max_pixels}-pixel limit", field
                    )
                if image.mode not in MODES:
                    raise InvalidImage(f"{image.format} images in mode {image.mode} are not supported", field)
                yield image
    except UnidentifiedImageError:
        raise InvalidImage(f"not an image in a supported format ({', '.join(FORMATS)})", field) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PayloadTooLarge("image is too many pixels (decompression bomb)", field) from None
    # Corrupt TIFF tags (offsets, counts) also surface as OverflowError and TypeError from Pillow's decoder setup.
    except (OSError, SyntaxError, ValueError, EOFError, OverflowError, TypeError) as exc:
        raise InvalidImage(f"image cannot be decoded (truncated or corrupt): {exc}", field) from None


def decode_image(data: bytes, field: str, max_bytes: int, max_pixels: int) -> Image.Image:
    with opened(data, field, max_bytes, max_pixels) as image:
        image.load()
        picture: Image.Image = ImageOps.exif_transpose(image)
    if picture.width < 1 or picture.height < 1:
        raise InvalidImage("image has no pixels", field)
    return to_8_bit(picture)  # here, so the model and the overlay both see the right picture


def read_header(data: bytes, field: str, max_bytes: int, max_pixels: int) -> tuple[int, int, str, str]:
    """(width, height, mode, format) from the header alone, so a request's cost is known before any pixel is
    decoded; damage past the header shows in decode_image."""
    with opened(data, field, max_bytes, max_pixels) as image:
        return image.width, image.height, image.mode, str(image.format)
