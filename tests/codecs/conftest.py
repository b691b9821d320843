"""Fixtures of the codec tests: real photographs as numpy arrays, and an image encoder."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import skimage.data
from PIL import Image


def encode(pixels: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A real photograph, (300, 451, 3) uint8."""
    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def image_bytes() -> Callable[..., bytes]:
    """encode(pixels or PIL image, fmt, **options) -> file bytes."""
    return encode
