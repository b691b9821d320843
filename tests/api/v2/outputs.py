"""A v2 response's outputs as numpy arrays, read from JSON `data` or from the binary data after the JSON object
(BYTES elements as a uint32 length and then their bytes), without tritonclient."""

from __future__ import annotations

import json
import struct

import numpy as np

DTYPES = {"FP32": "<f4", "INT64": "<i8"}


def arrays(response) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON object, each output by name); asserts a 200."""
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    head = int(length) if length is not None else len(response.content)
    body = json.loads(response.content[:head])
    binary, offset, out = response.content[head:], 0, {}
    for tensor in body["outputs"]:
        size = tensor.get("parameters", {}).get("binary_data_size")
        if size is None:
            data = tensor["data"]
            values = (
                np.array(data, dtype=object)
                if tensor["datatype"] == "BYTES"
                else np.array(data, DTYPES[tensor["datatype"]])
            )
        else:
            chunk, offset = binary[offset : offset + size], offset + size
            values = (
                strings(chunk) if tensor["datatype"] == "BYTES" else np.frombuffer(chunk, DTYPES[tensor["datatype"]])
            )
        out[tensor["name"]] = values.reshape(tensor["shape"])
    assert offset == len(binary)
    return body, out


def strings(chunk: bytes) -> np.ndarray:
    items, offset = [], 0
    while offset < len(chunk):
        (length,) = struct.unpack_from("<I", chunk, offset)
        items.append(chunk[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return np.array(items, dtype=object)
