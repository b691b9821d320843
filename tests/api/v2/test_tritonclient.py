"""The real tritonclient[http] against a live server: health, metadata, inference on encoded images (BYTES) and
on tensors (FP32), binary and JSON data, requested outputs, an explanation equal to v1's, and errors."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from service import __version__
from service.codecs.image.transforms import to_input
from service.models import ModelSpec

SPEC = ModelSpec(
    name="shapes",
    architecture="python:service.demo.net:shapes_cnn",
    num_classes=4,
    input_size=(96, 96),
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
)


@pytest.fixture(scope="module")
def client(live_server):
    client = triton.InferenceServerClient(live_server.host, network_timeout=120.0, connection_timeout=30.0)
    yield client
    client.close()


def images_input(files: list[bytes], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("images", [len(files)], "BYTES")
    # JSON carries strings: base64, as v1's JSON does; binary data carries the files' bytes as they are.
    items = files if binary else [base64.b64encode(f) for f in files]
    tensor.set_data_from_numpy(np.array(items, dtype=object), binary_data=binary)
    return tensor


def model_input(files: list[bytes]) -> np.ndarray:
    """[N, 3, 96, 96]: what the server makes of the files, made here with the service's own transform."""
    return np.stack([to_input(Image.open(io.BytesIO(f)), SPEC)[0].numpy() for f in files])


def tensor_input(values: np.ndarray, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("input", list(values.shape), "FP32")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


def test_health_and_readiness(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("shapes")
    assert not client.is_model_ready("no-such-model")


def test_server_and_model_metadata(client):
    assert client.get_server_metadata() == {
        "name": "saliency-service",
        "version": __version__,
        "extensions": ["binary_tensor_data", "saliency"],
    }
    assert client.get_model_metadata("shapes") == {
        "name": "shapes",
        "platform": "pytorch",
        "inputs": [
            {"name": "images", "datatype": "BYTES", "shape": [-1]},
            {"name": "input", "datatype": "FP32", "shape": [-1, 3, 96, 96]},
        ],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "saliency", "datatype": "FP32", "shape": [-1, 96, 96]},
        ],
    }


def test_infer_images_binary_and_json_give_v1s_predictions(client, live_server, demo_images):
    binary = client.infer("shapes", [images_input(demo_images.png)])
    as_json = client.infer("shapes", [images_input(demo_images.png, binary=False)], request_id="r-1")
    logits = binary.as_numpy("logits")
    assert logits.dtype == np.float32 and logits.shape == (3, 4)
    # Without requested outputs tritonclient asks for binary data; the JSON request's answer is the same.
    assert binary.get_output("logits")["parameters"]["binary_data_size"] == 3 * 4 * 4
    np.testing.assert_array_equal(as_json.as_numpy("logits"), logits)
    assert as_json.get_response()["id"] == "r-1"
    probabilities = binary.as_numpy("probabilities")
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    # The trained demo model knows its shapes.
    np.testing.assert_array_equal(logits.argmax(1), demo_images.labels)
    # The same numbers as v1's predict (top_k 4: every class).
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        files = [("image", f) for f in demo_images.png]
        v1 = http.post("/v1/models/shapes/predict", files=files, data={"top_k": "4"}).json()
    for row, result in zip(logits, v1["results"], strict=True):
        for p in result["predictions"]:
            assert row[p["index"]] == pytest.approx(p["logit"], abs=1e-5)


def test_infer_tensors_binary_and_json_equal_the_images(client, demo_images):
    values = model_input(demo_images.png)
    from_images = client.infer("shapes", [images_input(demo_images.png)]).as_numpy("logits")
    for binary in (True, False):
        result = client.infer("shapes", [tensor_input(values, binary)])
        np.testing.assert_allclose(result.as_numpy("logits"), from_images, atol=1e-5)


def test_requested_outputs_binary_and_json(client, demo_images):
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("logits", binary_data=True),
    ]
    result = client.infer("shapes", [images_input(demo_images.png[:1])], outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["probabilities", "logits"]
    assert "data" in response["outputs"][0] and "parameters" not in response["outputs"][0]
    assert response["outputs"][1]["parameters"] == {"binary_data_size": 16}
    assert result.as_numpy("probabilities").shape == (1, 4) and result.as_numpy("logits").shape == (1, 4)
    assert result.as_numpy("saliency") is None


@pytest.mark.parametrize(
    "explain",
    [
        {"method": {"name": "integrated_gradients", "steps": 8}, "target": 1},
        {"method": "gradient", "output": {"reduce": "none", "normalize": "none"}},
    ],
    ids=["ig-target", "gradient-raw"],
)
def test_explanation_equals_v1s(client, live_server, demo_images, explain):
    files = demo_images.png[:2]
    outputs = [triton.InferRequestedOutput("saliency"), triton.InferRequestedOutput("logits")]
    result = client.infer("shapes", [images_input(files)], outputs=outputs, parameters={"explain": explain})
    saliency = result.as_numpy("saliency")
    raw = explain.get("output", {}).get("reduce") == "none"
    assert saliency.dtype == np.float32 and saliency.shape == ((2, 3, 96, 96) if raw else (2, 96, 96))
    echo = result.get_response()["parameters"]["explain"]
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        body = {"images": [base64.b64encode(f).decode() for f in files], **explain}
        v1 = http.post("/v1/models/shapes/explain", json=body).json()
    assert echo["method"] == v1["method"]
    for i, res in enumerate(v1["results"]):
        assert echo["target"][i] == res["target"]["index"]
        expected = np.frombuffer(base64.b64decode(res["saliency"]["data"]), "<f4").reshape(res["saliency"]["shape"])
        np.testing.assert_allclose(saliency[i], expected, atol=1e-5)
    # The FP32 input in model-input space explains the same.
    from_tensor = client.infer(
        "shapes", [tensor_input(model_input(files))], outputs=outputs, parameters={"explain": explain}
    )
    np.testing.assert_allclose(from_tensor.as_numpy("saliency"), saliency, atol=1e-5)


def test_a_vits_attention_rollout_equals_v1s(client, live_server, demo_images):
    files = demo_images.png[:2]
    explain = {"method": {"name": "attention_rollout", "head_fusion": "max"}}
    outputs = [triton.InferRequestedOutput("saliency")]
    result = client.infer("vit", [images_input(files)], outputs=outputs, parameters={"explain": explain})
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        body = {"images": [base64.b64encode(f).decode() for f in files], **explain}
        v1 = http.post("/v1/models/vit/explain", json=body).json()
    for i, res in enumerate(v1["results"]):
        expected = np.frombuffer(base64.b64decode(res["saliency"]["data"]), "<f4").reshape(res["saliency"]["shape"])
        np.testing.assert_allclose(result.as_numpy("saliency")[i], expected, atol=1e-5)
        assert expected.max() > expected.min()
    with pytest.raises(InferenceServerException, match="no attention probabilities reached"):
        client.infer("shapes", [images_input(files)], parameters={"explain": explain})


def test_errors_raise_with_the_servers_message(client, demo_images):
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", [images_input(demo_images.png[:1])])
    assert unknown.value.status() == "404" and "unknown model 'no-such-model'" in unknown.value.message()

    with pytest.raises(InferenceServerException) as shape:
        client.infer("shapes", [tensor_input(np.zeros((1, 3, 64, 64), np.float32))])
    assert shape.value.status() == "400"
    assert "takes float32 [3, 96, 96]" in shape.value.message()

    with pytest.raises(InferenceServerException) as method:
        client.infer("shapes", [images_input(demo_images.png[:1])], parameters={"explain": {"method": "magic"}})
    assert method.value.status() == "400"
    assert method.value.message().startswith("parameters.explain.method.name: unknown method 'magic'")

    with pytest.raises(InferenceServerException) as not_image:
        client.infer("shapes", [images_input([b"not a picture"])])
    assert not_image.value.status() == "400" and "images.0: not an image" in not_image.value.message()

    with pytest.raises(InferenceServerException) as metadata:
        client.get_model_metadata("no-such-model")
    assert metadata.value.status() == "404"


def test_a_causal_lm_generates_as_v1_does(client, live_server):
    prompts = ["the cat sat on the", "a dog"]
    tensor = triton.InferInput("texts", [len(prompts)], "BYTES")
    tensor.set_data_from_numpy(np.array([p.encode() for p in prompts], dtype=object))
    generate = {"max_new_tokens": 4, "do_sample": True, "temperature": 2.0, "seed": 3}
    result = client.infer("tiny-lm", [tensor], parameters={"generate": generate})
    token_ids, text = result.as_numpy("token_ids"), result.as_numpy("text")
    assert token_ids.dtype == np.int64 and token_ids.shape[0] == 2 and text.shape == (2,)
    assert result.get_response()["parameters"]["generate"]["seed"] == 3
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        v1 = http.post("/v1/models/tiny-lm/predict", json={"texts": prompts, "generate": generate}).json()
    for i, res in enumerate(v1["results"]):
        ids = [t["id"] for t in res["continuation"]["tokens"]]
        assert token_ids[i, : len(ids)].tolist() == ids and (token_ids[i, len(ids) :] == -1).all()
        assert text[i].decode() == res["continuation"]["text"]  # binary BYTES come back as bytes
    # JSON outputs read the same.
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in ("text", "log_probs")]
    as_json = client.infer("tiny-lm", [tensor], outputs=outputs, parameters={"generate": generate})
    assert [t.decode() if isinstance(t, bytes) else t for t in as_json.as_numpy("text")] == [t.decode() for t in text]
    np.testing.assert_array_equal(as_json.as_numpy("log_probs"), result.as_numpy("log_probs"))
    with pytest.raises(InferenceServerException) as refused:
        client.infer("tiny-lm", [tensor], parameters={"generate": {"temperature": 0}})
    assert refused.value.status() == "400" and "parameters.generate.temperature" in refused.value.message()
