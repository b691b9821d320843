"""Tensor data <-> numpy, against tritonclient's own serialization and parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tritonclient.http import InferResult
from tritonclient.utils import serialize_byte_tensor

from service.api.v2 import tensors, wire
from service.errors import InvalidInput


def test_bytes_elements_as_tritonclient_serializes_them():
    items = [b"", b"a", bytes(range(256)), "é".encode()]
    serialized = serialize_byte_tensor(np.array(items, dtype=object)).item()
    assert tensors.bytes_from_binary(memoryview(serialized), 4, "images") == items


@pytest.mark.parametrize("cut", [1, 3, 5, 300])
def test_truncated_bytes_elements_are_refused(cut):
    serialized = serialize_byte_tensor(np.array([b"x" * 10, bytes(290)], dtype=object)).item()
    with pytest.raises(InvalidInput) as refused:
        tensors.bytes_from_binary(memoryview(serialized[:-cut]), 2, "images")
    assert refused.value.field == "images"


def test_strings_from_json_flat_or_nested():
    assert tensors.strings_from_json([["a"], ["b"]], 2, "texts") == ["a", "b"]
    with pytest.raises(InvalidInput, match="data has more than 2 elements; the shape has 2"):
        tensors.strings_from_json(["a", "b", "c", "d"], 2, "texts")
    with pytest.raises(InvalidInput, match="data has 1 elements; the shape has 2"):
        tensors.strings_from_json([[], ["a"]], 2, "texts")
    with pytest.raises(InvalidInput, match="not NoneType"):
        tensors.strings_from_json([None], 1, "texts")


def test_floats_from_binary_and_json_agree():
    values = np.random.default_rng(0).standard_normal(24).astype(np.float32)
    from_binary = tensors.floats_from_binary(memoryview(values.astype("<f4").tobytes()), 24, "input")
    from_json = tensors.floats_from_json(values.reshape(2, 3, 4).tolist(), 24, "input")
    np.testing.assert_array_equal(from_binary, values)
    np.testing.assert_array_equal(from_json, values)
    assert from_binary.flags.writeable  # a copy: torch.from_numpy needs no read-only buffer


def test_outputs_read_back_by_tritonclient():
    logits = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
    saliency = np.random.default_rng(1).random((2, 5, 5)).astype(np.float32)
    outputs, binary = [], []
    for name, values, as_binary in (("logits", logits, False), ("saliency", saliency, True)):
        tensor, data = tensors.output(name, values, as_binary)
        outputs.append(tensor)
        binary += [data] if data is not None else []
    response = wire.respond({"model_name": "m", "outputs": outputs}, binary)
    head = int(response.headers[wire.HEADER_LENGTH])
    assert json.loads(response.body[:head])["outputs"][1]["parameters"] == {"binary_data_size": saliency.nbytes}
    result = InferResult.from_response_body(response.body, header_length=head)
    np.testing.assert_array_equal(result.as_numpy("logits"), logits)
    np.testing.assert_array_equal(result.as_numpy("saliency"), saliency)
    plain = wire.respond({"model_name": "m", "outputs": outputs[:1]}, [])
    assert wire.HEADER_LENGTH not in plain.headers and plain.media_type == "application/json"
    np.testing.assert_array_equal(InferResult.from_response_body(plain.body).as_numpy("logits"), logits)
