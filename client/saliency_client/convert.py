"""What the client sends and gets back: images of any common kind as base64 PNG/JPEG, and the service's
array encoding and PNGs as numpy arrays and PIL images."""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import ServiceError

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray
# The dtypes of the service's arrays (service/codecs/arrays.py): C-order, little-endian.
ARRAY_DTYPES: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "uint8": np.dtype("u1")}
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


def as_list(inputs: Any, single: tuple[type, ...]) -> list[Any]:
    """One input, or a sequence of them, as a list."""
    if isinstance(inputs, single):
        return [inputs]
    if isinstance(inputs, Sequence):
        return list(inputs)
    raise ServiceError("invalid_input", f"expected one input or a list of them, not {type(inputs).__name__}")


def image_list(images: ImageInput | Sequence[ImageInput]) -> list[str]:
    """Each image as the base64 string the JSON API takes."""
    single = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)
    return [base64.b64encode(image_bytes(image, i)).decode("ascii") for i, image in enumerate(as_list(images, single))]


def image_bytes(image: ImageInput, index: int = 0) -> bytes:
    """A file's bytes as they are (the server decodes PNG, JPEG, WebP ...); PIL images and arrays as PNG."""
    field = f"images.{index}"
    if isinstance(image, str | os.PathLike):
        try:
            return Path(image).read_bytes()
        except OSError as exc:
            raise ServiceError("invalid_input", f"cannot read {image}: {exc.strerror or exc}", field=field) from None
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, np.ndarray):
        image = array_image(image, field)
    if isinstance(image, Image.Image):
        # PNG is lossless: the server sees exactly these pixels.
        out = io.BytesIO()
        (image if image.mode in PNG_MODES else image.convert("RGB")).save(out, format="PNG")
        return out.getvalue()
    raise ServiceError("invalid_input", f"an image cannot be a {type(image).__name__}", field=field)


def array_image(array: np.ndarray, field: str) -> Image.Image:
    """uint8 pixels, (H, W) grey or (H, W, C) with C = 1, 3 (RGB) or 4 (RGBA), as PIL reads them."""
    if array.dtype != np.uint8:
        # Floats could mean 0..1 or 0..255: guessing would change the pixels without a word.
        raise ServiceError("invalid_input", f"image arrays must be uint8, not {array.dtype}", field=field)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        shape = "x".join(str(n) for n in array.shape)
        message = f"image arrays are (H, W) or (H, W, 3|4) (channels last), not {shape}"
        raise ServiceError("invalid_input", message, field=field)
    return Image.fromarray(np.ascontiguousarray(array))


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    """The service's {"shape", "dtype", "data"} as a writable array of that dtype (native byte order)."""
    dtype = ARRAY_DTYPES.get(encoded.get("dtype", ""))
    if dtype is None:
        raise ServiceError("invalid_response", f"unknown array dtype {encoded.get('dtype')!r}")
    shape = [int(n) for n in encoded["shape"]]
    raw = base64.b64decode(encoded["data"], validate=True)
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise ServiceError("invalid_response", f"array of shape {shape} has {len(raw)} bytes of {dtype.name}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def png_bytes(encoded: str | None) -> bytes | None:
    return base64.b64decode(encoded, validate=True) if encoded is not None else None


def open_png(data: bytes | None) -> Image.Image | None:
    if data is None:
        return None
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
