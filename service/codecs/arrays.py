"""Maps as JSON arrays: {"shape", "dtype", "data" (base64), "min", "max"}, for every modality."""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np

ArrayDtype = Literal["float32", "float16", "uint8", "none"]


def encode_array(values: np.ndarray, dtype: ArrayDtype, signed: bool) -> dict | None:
    """{"shape", "dtype", "data": base64 of C-order little-endian bytes, "min", "max"}."""
    if dtype == "none":
        return None
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "uint8":
        # uint8 is the normalised map scaled to 0..255 (signed maps: -1..1 -> 0..255).
        unit = (values + 1) / 2 if signed else values
        out = np.clip(np.rint(np.nan_to_num(unit) * 255), 0, 255).astype(np.uint8)
    else:
        out = values.astype("<f4" if dtype == "float32" else "<f2", copy=False)
    return {
        "shape": list(out.shape),
        "dtype": dtype,
        # From the array's own buffer (C-contiguous): a tobytes() copy was 4 more bytes per float32 pixel.
        "data": base64.b64encode(out.reshape(-1).view(np.uint8).data).decode("ascii"),
        "min": float(values.min()) if values.size else 0.0,
        "max": float(values.max()) if values.size else 0.0,
    }
