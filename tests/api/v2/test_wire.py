"""The binary tensor data extension's body: where the JSON object ends, and bounds before parsing it."""

from __future__ import annotations

import pytest

from service.api.v2 import wire
from service.errors import InvalidInput, PayloadTooLarge


def test_split_at_the_header_length():
    body = b'{"a":1}' + b"\x00\x01"
    header, binary = wire.split(body, "7")
    assert header == b'{"a":1}' and bytes(binary) == b"\x00\x01"
    assert wire.split(body, None) == (body, memoryview(b""))
    header, binary = wire.split(body, str(len(body)))
    assert header == body and len(binary) == 0


@pytest.mark.parametrize("value", ["-1", "1.5", "0x10", "", " ", "1e3", "٣", "9" * 19, "10"])
def test_split_refuses_what_is_not_a_length_within_the_body(value):
    with pytest.raises(InvalidInput) as refused:
        wire.split(b"123456789", value)
    assert refused.value.field == wire.HEADER_LENGTH


def test_values_are_bounded_before_parsing():
    wire.check_values(b'{"data": [1, 2, 3]}', 4)  # 2 commas, 1 bracket, 1 brace
    with pytest.raises(PayloadTooLarge, match="up to 5 values, over the 4"):
        wire.check_values(b'{"data": [1, 2, 3, 4]}', 4)
