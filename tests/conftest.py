"""Fixtures every test folder shares."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from service.models import ModelSpec


def png_16_bit(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of uint16 pixels, (H, W) grey or (H, W, 3) RGB: Pillow writes no 16-bit RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    assert pixels.dtype == np.uint16 and (pixels.ndim == 2 or pixels.shape[2] == 3)
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = pixels.astype(">u2").reshape(height, -1)
    scanlines = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def png16() -> Callable[[np.ndarray], bytes]:
    """png_16_bit(uint16 pixels, (H, W) or (H, W, 3)) -> PNG bytes at 16 bits per sample."""
    return png_16_bit


DEMO = "python:service.demo.net:shapes_cnn"  # the demo CNN: small, and the same initial weights every time


def entry(name: str = "demo", **fields) -> dict:
    return {"name": name, "architecture": DEMO, "num_classes": 4, "input_size": [32, 32], **fields}


@pytest.fixture
def make_spec() -> Callable[..., ModelSpec]:
    """make_spec(name="demo", **fields): a ModelSpec of the demo CNN at 32x32 unless fields say otherwise."""
    return lambda name="demo", **fields: ModelSpec(**entry(name, **fields))


@pytest.fixture
def make_entry() -> Callable[..., dict]:
    """make_entry(name="demo", **fields): one [[models]] entry as a dict."""
    return entry
