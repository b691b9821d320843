"""service.codecs.arrays: maps as base64 arrays, exact and in C order."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from service.codecs.arrays import encode_array

DTYPES = {"float32": "<f4", "float16": "<f2", "uint8": "u1"}


def decoded(encoded: dict) -> np.ndarray:
    data = base64.b64decode(encoded["data"])
    return np.frombuffer(data, dtype=DTYPES[encoded["dtype"]]).reshape(encoded["shape"])


@pytest.fixture
def unit_map() -> np.ndarray:
    return np.linspace(0.0, 1.0, 3 * 5, dtype=np.float32).reshape(3, 5)


def test_float32_round_trips_exactly(unit_map):
    encoded = encode_array(unit_map, "float32", signed=False)
    assert (encoded["shape"], encoded["dtype"]) == ([3, 5], "float32")
    assert len(base64.b64decode(encoded["data"])) == unit_map.size * 4
    np.testing.assert_array_equal(decoded(encoded), unit_map)
    assert (encoded["min"], encoded["max"]) == (0.0, 1.0)


def test_float16_is_the_half_precision_map(unit_map):
    encoded = encode_array(unit_map, "float16", signed=False)
    assert len(base64.b64decode(encoded["data"])) == unit_map.size * 2
    np.testing.assert_array_equal(decoded(encoded), unit_map.astype(np.float16))


def test_uint8_scales_unsigned_maps_to_0_255(unit_map):
    encoded = encode_array(unit_map, "uint8", signed=False)
    values = decoded(encoded)
    np.testing.assert_array_equal(values, np.rint(unit_map * 255).astype(np.uint8))
    assert (values.min(), values.max()) == (0, 255)


def test_uint8_puts_zero_in_the_middle_of_signed_maps():
    signed = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]], dtype=np.float32)
    values = decoded(encode_array(signed, "uint8", signed=True))
    np.testing.assert_array_equal(values, [[0, 64, 128, 191, 255]])  # rint((v + 1) / 2 * 255), ties to even


def test_bytes_are_c_order_little_endian_whatever_the_input_layout():
    values = np.arange(24, dtype=">f4").reshape(2, 3, 4).transpose(2, 0, 1)  # big-endian, not C-contiguous
    encoded = encode_array(values, "float32", signed=False)
    assert encoded["shape"] == [4, 2, 3]
    raw = base64.b64decode(encoded["data"])
    assert raw == np.ascontiguousarray(values, dtype="<f4").tobytes()
    np.testing.assert_array_equal(decoded(encoded), values)


def test_three_dimensional_maps_keep_their_shape():
    values = np.random.default_rng(0).random((3, 4, 6), dtype=np.float32)
    for dtype in ("float32", "float16", "uint8"):
        assert decoded(encode_array(values, dtype, signed=False)).shape == (3, 4, 6)


def test_none_omits_the_array(unit_map):
    assert encode_array(unit_map, "none", signed=False) is None
