"""v2 inference in-process: hostile bodies and tensors get a 4xx `{"error": "..."}` naming the problem,
never a 500; the body limits apply as for v1; compressed bodies; deadlines."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import numpy as np
import pytest

URL = "/v2/models/shapes18/infer"
SHAPE = [1, 3, 64, 64]
ZEROS = [0.0] * (3 * 64 * 64)


def fp32(data=ZEROS, shape=SHAPE, **fields) -> dict:
    return {"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": data}], **fields}


def with_binary(header: dict, data: bytes, length: str | bytes | None = None) -> tuple[bytes, dict]:
    head = json.dumps(header).encode()
    return head + data, {"Inference-Header-Content-Length": length if length is not None else str(len(head))}


def binary_input(name: str, datatype: str, shape: list[int], size: int, **fields) -> dict:
    tensor = {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}
    return {"inputs": [tensor], **fields}


def expect(response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    for fragment in fragments:
        assert fragment in body["error"]
    return body["error"]


def test_json_tensor_answers_every_output_as_json(client):
    response = client.post(URL, json=fp32(id="abc"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model_name"] == "shapes18" and body["id"] == "abc"
    assert [(o["name"], o["shape"], o["datatype"]) for o in body["outputs"]] == [
        ("logits", [1, 4], "FP32"),
        ("probabilities", [1, 4], "FP32"),
    ]
    assert sum(body["outputs"][1]["data"]) == pytest.approx(1.0, abs=1e-6)


def test_binary_output_follows_the_json_object(client):
    response = client.post(URL, json=fp32(parameters={"binary_data_output": True}))
    head = int(response.headers["inference-header-content-length"])
    assert response.headers["content-type"] == "application/octet-stream"
    body = json.loads(response.content[:head])
    sizes = [o["parameters"]["binary_data_size"] for o in body["outputs"]]
    assert sizes == [16, 16] and len(response.content) == head + 32
    logits = np.frombuffer(response.content[head : head + 16], "<f4")
    json_logits = client.post(URL, json=fp32()).json()["outputs"][0]["data"]
    np.testing.assert_array_equal(logits, np.float32(json_logits))


@pytest.mark.parametrize(
    ("length", "fragment"),
    [
        ("999999", "longer than the"),
        ("-5", "must be a byte count"),
        ("ten", "must be a byte count"),
        ("²".encode("latin-1"), "must be a byte count"),  # isdigit() but not int()
        ("9" * 40, "must be a byte count"),
        ("0", "body: Invalid JSON"),
    ],
)
def test_hostile_header_lengths(client, length, fragment):
    content, headers = with_binary(binary_input("input", "FP32", SHAPE, 4 * 12288), bytes(4 * 12288), length)
    expect(client.post(URL, content=content, headers=headers), 400, fragment)


@pytest.mark.parametrize(
    ("declared", "sent", "fragment"),
    [
        (100, 100, "100 bytes of binary data; the shape's 12288 FP32 elements are 49152"),
        (49152, 100, "binary_data_size is 49152; 100 bytes"),
        (49152, 49160, "8 bytes after the JSON object"),
    ],
)
def test_binary_sizes_that_do_not_match(client, declared, sent, fragment):
    content, headers = with_binary(binary_input("input", "FP32", SHAPE, declared), bytes(sent))
    expect(client.post(URL, content=content, headers=headers), 400, fragment)


def test_binary_size_without_the_header(client):
    head = json.dumps(binary_input("input", "FP32", SHAPE, 49152)).encode()
    expect(client.post(URL, content=head + bytes(49152)), 400, "Invalid JSON")
    expect(client.post(URL, content=head), 400, "Inference-Header-Content-Length header there?")


@pytest.mark.parametrize(
    ("elements", "fragment"),
    [
        (struct.pack("<I", 9) + b"not a png", "images.0: not an image"),
        (struct.pack("<I", 500) + b"short", "element 0 says 500 bytes; 5 are left"),
        (b"\x01\x00", "binary data ends before element 0"),
        (struct.pack("<I", 0) * 2, "4 bytes of binary data after the 1 elements"),
        (struct.pack("<I", 0), "images.0: empty image"),
    ],
)
def test_bytes_elements_that_are_not_images(client, elements, fragment):
    content, headers = with_binary(binary_input("images", "BYTES", [1], len(elements)), elements)
    expect(client.post(URL, content=content, headers=headers), 400, fragment)


def test_images_as_json_strings(client, photos):
    body = {
        "inputs": [
            {"name": "images", "datatype": "BYTES", "shape": [2, 1], "data": [[photos["flower.png"].b64], ["%%"]]}
        ]
    }
    expect(client.post(URL, json=body), 400, "images.1: not valid base64")
    body["inputs"][0]["data"] = [photos["flower.png"].b64, 3]
    expect(client.post(URL, json=body), 400, "BYTES elements in JSON are strings, not int")
    body["inputs"][0]["data"] = [photos["flower.png"].b64, photos["flower.png"].data_url]
    assert client.post(URL, json=body).json()["outputs"][0]["shape"] == [2, 4]


def test_deep_json_is_refused_by_the_parser(client):
    deep = "[" * 10000 + "]" * 10000
    text = '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": ' + deep + "}]}"
    expect(client.post(URL, content=text), 400, "recursion limit exceeded")
    expect(client.post(URL, content="{" * 10000), 400, "Invalid JSON")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e39"])
def test_non_finite_values_are_refused(client, bad):
    text = json.dumps(fp32(data=[0.0] * 12287 + [12345.0])).replace("12345.0", bad)
    expect(client.post(URL, content=text), 400, "input 0 has values that are not finite")


def test_non_finite_binary_values_are_refused(client):
    values = np.zeros(12288, "<f4")
    values[7] = np.nan
    content, headers = with_binary(binary_input("input", "FP32", SHAPE, values.nbytes), values.tobytes())
    expect(client.post(URL, content=content, headers=headers), 400, "not finite")


def test_values_that_overflow_the_model_are_a_client_error(client):
    # Finite, but far outside the model's input space: the logits overflow to NaN.
    huge = np.full(SHAPE, 3e38, np.float32)
    expect(client.post(URL, json=fp32(data=huge.ravel().tolist())), 400, "logits are not finite")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (fp32(shape=[1, 3, 64]), "inputs.0.shape: shape [1, 3, 64] is not [N, C, H, W]"),
        (fp32(shape=[1, 1, 64, 64], data=[0.0] * 4096), "takes float32 [3, 64, 64]"),
        (fp32(shape=[5, 3, 64, 64], data=[]), "5 inputs; send 1 to 4"),
        (fp32(shape=[0, 3, 64, 64], data=[]), "0 inputs; send 1 to 4"),
        (fp32(shape=[1, 3, 64, -64]), "inputs.0.shape.3: Input should be greater than or equal to 0"),
        (fp32(shape=[2**64, 3, 64, 64]), "inputs.0.shape.0: Input should be less than"),
        (fp32(data=ZEROS[:-1]), "data has 12287 elements; the shape has 12288"),
        (fp32(data=[[0.0, 1.0], [2.0]]), "not a regular array of numbers"),
        (fp32(data=["0"] * 12288), "FP32 data must be JSON numbers"),
        (fp32(data=None), "give the tensor's `data`, or its binary_data_size"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}, "has no input 'x'"),
        ({"inputs": [{"name": "input", "datatype": "INT8", "shape": [1], "data": [1]}]}, "is FP32, not INT8"),
        ({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}]}, "send [N]"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": fp32()["inputs"] * 2}, "send one input, one of: images (BYTES), input (FP32)"),
        ({**fp32(), "extra": 1}, "extra: Extra inputs are not permitted"),
        (fp32(outputs=[{"name": "scores"}]), "outputs.0.name: model 'shapes18' has no output 'scores'"),
        (fp32(outputs=[{"name": "saliency"}]), "output 'saliency' needs the `explain` parameter"),
        (fp32(outputs=[{"name": "logits"}, {"name": "logits"}]), "output 'logits' is requested twice"),
        (fp32(outputs=[{"name": "logits", "parameters": {"binary_data": "yes"}}]), "binary_data: Input should be"),
        (fp32(parameters={"binary_data_output": 1}), "parameters.binary_data_output: Input should be a valid boolean"),
        (fp32(parameters={"timeout": -1}), "parameters.timeout: Input should be greater than or equal to 1"),
        (fp32(parameters={"explain": {"target": 9}}), "parameters.explain.target: class 9 out of range [0, 4)"),
        (fp32(parameters={"explain": {"target": True}}), "parameters.explain.target"),
        (
            fp32(parameters={"explain": {"method": {"name": "smoothgrad", "samples": 0}}}),
            "parameters.explain.method.samples",
        ),
        (
            fp32(parameters={"explain": {"method": "gradcam", "output": {"overlay": True}}}),
            "parameters.explain.output.overlay",
        ),
        (fp32(parameters={"explain": "{not json"}), "parameters.explain: Invalid JSON"),
        (
            fp32(parameters={"explain": {"method": {"name": "occlusion", "steps": 3}}}),
            "parameters.explain.method.steps",
        ),
        (fp32(parameters={"explain": {"method": "gradcam", "steps": 3}}), "parameters.explain.steps: Extra inputs"),
    ],
)
def test_bad_requests_name_their_field(client, body, fragment):
    expect(client.post(URL, json=body), 400, fragment)


def test_unknown_model_is_404_and_a_failed_one_503(client):
    expect(client.post("/v2/models/nope/infer", json=fp32()), 404, "unknown model 'nope'")
    expect(client.get("/v2/models/nope"), 404, "unknown model 'nope'")
    failed = client.post("/v2/models/broken/infer", json=fp32())
    expect(failed, 503, "model 'broken' failed to load")
    assert int(failed.headers["retry-after"]) >= 1


def test_explain_parameter_as_a_json_string(client):
    spec = {"method": "gradcam", "target": 2}
    as_object = client.post(URL, json=fp32(parameters={"explain": spec}))
    as_string = client.post(URL, json=fp32(parameters={"explain": json.dumps(spec)}))
    assert as_object.status_code == 200, as_object.text
    assert as_object.json() == as_string.json()
    explain = as_object.json()["parameters"]["explain"]
    assert explain == {"method": {"name": "gradcam", "layer": "layer4"}, "objective": "logit", "target": [2]}
    assert as_object.json()["outputs"][2]["shape"] == [1, 64, 64]


def test_body_limits_apply_as_for_v1(client, settings):
    too_big = b"{" + b" " * settings.max_body_bytes + b"}"
    expect(client.post(URL, content=too_big), 413, f"body is over the {settings.max_body_bytes}-byte limit")
    # Many more JSON values than the model's largest request (4 x 3 x 64 x 64): refused before parsing.
    many = fp32(data=[0] * (4 * 3 * 64 * 64 + 2000))
    expect(client.post(URL, json=many), 413, "send the tensor as binary data")


def test_compressed_bodies(client, settings):
    body = json.dumps(fp32()).encode()
    plain = client.post(URL, content=body).json()
    assert client.post(URL, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}).json() == plain
    assert client.post(URL, content=zlib.compress(body), headers={"Content-Encoding": "deflate"}).json() == plain
    bomb = gzip.compress(b" " * (settings.max_body_bytes + 10))
    expect(client.post(URL, content=bomb, headers={"Content-Encoding": "gzip"}), 413, "decompressed body is over")
    expect(client.post(URL, content=body, headers={"Content-Encoding": "br"}), 415, "Content-Encoding 'br'")
    expect(client.post(URL, content=gzip.compress(body)[:-12], headers={"Content-Encoding": "gzip"}), 400, "truncated")
    expect(client.post(URL, content=b"garbage", headers={"Content-Encoding": "gzip"}), 400, "cannot be decompressed")


def test_a_deadline_of_a_microsecond_is_a_504(client):
    expect(client.post(URL, json=fp32(parameters={"timeout": 1})), 504, "deadline")
