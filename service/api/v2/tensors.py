"""Protocol tensors <-> numpy: JSON `data` and binary data, for the BYTES and FP32 datatypes (and INT64 out).

Binary data is little-endian and row-major without padding; a BYTES element is a uint32 length and then its
bytes (Triton's binary tensor data extension). Every mismatch between a tensor's shape and its data is the
client's error, named by the tensor.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import numpy as np

from ...errors import InvalidInput

FP32 = np.dtype("<f4")
LENGTH = struct.Struct("<I")


def elements(shape: list[int]) -> int:
    return math.prod(shape)


def bytes_from_binary(buffer: memoryview, count: int, name: str) -> list[bytes]:
    """`count` BYTES elements that fill `buffer` exactly."""
    out, offset = [], 0
    for i in range(count):
        if offset + LENGTH.size > len(buffer):
            raise InvalidInput(f"binary data ends before element {i} of the {count} that the shape declares", name)
        (length,) = LENGTH.unpack_from(buffer, offset)
        offset += LENGTH.size
        if length > len(buffer) - offset:
            raise InvalidInput(f"element {i} says {length} bytes; {len(buffer) - offset} are left", name)
        out.append(bytes(buffer[offset : offset + length]))
        offset += length
    if offset != len(buffer):
        raise InvalidInput(f"{len(buffer) - offset} bytes of binary data after the {count} elements of the shape", name)
    return out


def strings_from_json(data: list[Any], count: int, name: str) -> list[str]:
    """BYTES elements given as JSON strings, nested or flat."""
    out: list[str] = []
    pending: list[Any] = [iter(data)]
    while pending:  # depth-first without recursion: nesting is as deep as the client makes it
        item = next(pending[-1], StopIteration)
        if item is StopIteration:
            pending.pop()
        elif isinstance(item, list):
            pending.append(iter(item))
        elif isinstance(item, str):
            out.append(item)
            if len(out) > count:
                break
        else:
            raise InvalidInput(f"BYTES elements in JSON are strings, not {type(item).__name__}", name)
    if len(out) != count:
        found = f"more than {count}" if len(out) > count else str(len(out))
        raise InvalidInput(f"data has {found} elements; the shape has {count}", name)
    return out


def floats_from_binary(buffer: memoryview, count: int, name: str) -> np.ndarray:
    if len(buffer) != count * FP32.itemsize:
        raise InvalidInput(
            f"{len(buffer)} bytes of binary data; the shape's {count} FP32 elements are {count * FP32.itemsize}", name
        )
    return np.frombuffer(buffer, dtype=FP32).astype(np.float32)


def floats_from_json(data: list[Any], count: int, name: str) -> np.ndarray:
    """FP32 elements given as JSON numbers, nested or flat (a ragged nesting is an error)."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        raise InvalidInput("data is not a regular array of numbers (ragged nesting?)", name) from None
    if array.dtype.kind not in "iuf":
        raise InvalidInput("FP32 data must be JSON numbers", name)
    if array.size != count:
        raise InvalidInput(f"data has {array.size} elements; the shape has {count}", name)
    with np.errstate(over="ignore"):  # out of float32's range becomes infinity, which the codec refuses
        return array.astype(np.float32).reshape(-1)


def output(name: str, values: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """A $response_output for FP32 `values` (INT64 for integer arrays, BYTES for an object array of strings),
    and its binary data when asked for."""
    if values.dtype == object:
        return strings_output(name, values, binary)
    integer = values.dtype.kind in "iu"
    values = np.ascontiguousarray(values, dtype="<i8" if integer else FP32)
    tensor: dict[str, Any] = {"name": name, "datatype": "INT64" if integer else "FP32", "shape": list(values.shape)}
    if binary:
        data = values.tobytes()
        tensor["parameters"] = {"binary_data_size": len(data)}
        return tensor, data
    tensor["data"] = values.reshape(-1).tolist()
    return tensor, None


def strings_output(name: str, values: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """BYTES: JSON strings, or in binary each element's UTF-8 bytes after their uint32 length."""
    items = [str(item) for item in values.reshape(-1)]
    tensor: dict[str, Any] = {"name": name, "datatype": "BYTES", "shape": list(values.shape)}
    if not binary:
        tensor["data"] = items
        return tensor, None
    data = b"".join(LENGTH.pack(len(encoded)) + encoded for encoded in (item.encode() for item in items))
    tensor["parameters"] = {"binary_data_size": len(data)}
    return tensor, data


def array_of(encoded: dict[str, Any]) -> np.ndarray:
    """A map as the codecs encode it for every protocol (service/codecs/arrays.py), as float32."""
    assert encoded["dtype"] == "float32"
    return np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f4").reshape(encoded["shape"])
