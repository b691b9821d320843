"""The body of a v2 inference request and response: the JSON object, then any binary tensor data.

With the binary tensor data extension the `Inference-Header-Content-Length` header gives the JSON object's
length, and the tensors' bytes follow it in the order of the tensors that declare a `binary_data_size`.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from ...errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ...settings import Settings
from ..common import read_body

HEADER_LENGTH = "Inference-Header-Content-Length"
# Content-Encoding a client may compress its request with (tritonclient's request_compression_algorithm).
ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
BYTES_PER_JSON_VALUE = 36  # a Python float and its list slot: what each value of the JSON object costs parsed


async def read(request: Request, settings: Settings) -> bytes:
    """The whole body within the body limit, decompressed (within the same limit) when it is compressed."""
    body = await read_body(request, settings)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ZLIB_WBITS:
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r}: send gzip, deflate or none")
    inflater = zlib.decompressobj(ZLIB_WBITS[encoding])
    try:
        # At most one byte over the limit, whatever the ratio: a small bomb cannot grow past it.
        out = inflater.decompress(body, settings.max_body_bytes + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the {encoding} body cannot be decompressed: {exc}") from None
    if len(out) > settings.max_body_bytes:
        raise PayloadTooLarge(f"the decompressed body is over the {settings.max_body_bytes}-byte limit")
    if not inflater.eof:
        raise InvalidInput(f"the {encoding} body is truncated")
    return out


def split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(the JSON object, the binary data after it) per the Inference-Header-Content-Length header."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    # isdigit() alone admits "²", which int() refuses; 18 digits are over any body this server reads.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput(f"{HEADER_LENGTH} must be a byte count, not {header_length[:40]!r}", HEADER_LENGTH)
    length = int(text)
    if length > len(body):
        raise InvalidInput(f"{HEADER_LENGTH} is {length}, longer than the {len(body)}-byte body", HEADER_LENGTH)
    return body[:length], memoryview(body)[length:]


def check_values(header: bytes, limit: int) -> None:
    """Refuses a JSON object with more than `limit` values before it is parsed into Python objects.

    Every value after an array's or object's first needs a comma, so commas plus brackets bound the count
    (strings may contain commas: the bound is generous, never short).
    """
    bound = header.count(b",") + header.count(b"[") + header.count(b"{")
    if bound > limit:
        raise PayloadTooLarge(
            f"the JSON object has up to {bound} values, over the {limit} this model's largest request needs; "
            "send the tensor as binary data (binary tensor data extension)"
        )


def respond(body: dict[str, Any], binary: list[bytes]) -> Response:
    """The JSON object, with the binary outputs after it (and the header that says where they start)."""
    head = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if not binary:
        return Response(head, media_type="application/json")
    return Response(
        b"".join([head, *binary]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(head))},
    )
