"""A detection model through the Open Inference Protocol v2: its metadata names boxes, scores, labels and
saliency, an inference answers v1's detections as tensors padded to max_detections, and with the `explain`
parameter each box's map as `saliency` [N, K, H, W], v1's maps."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from detectors import write_detector
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

from ..conftest import LIMITS


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_detector(tmp_path_factory.mktemp("detection-v2"))
    with TestClient(create_app(Settings(config=config, **LIMITS))) as test_client:
        yield test_client


def test_metadata_lists_the_detection_tensors(client):
    outputs = client.get("/v2/models/frcnn").json()["outputs"]
    assert [(o["name"], o["datatype"], o["shape"]) for o in outputs] == [
        ("boxes", "FP32", [-1, 3, 4]), ("scores", "FP32", [-1, 3]), ("labels", "INT64", [-1, 3]),
        ("saliency", "FP32", [-1, 3, 128, 128]),
    ]  # fmt: skip


def test_inference_gives_v1s_detections_as_tensors(client, photos):
    files = [photos["chelsea.jpg"].data, photos["flower.png"].data]
    encoded = [base64.b64encode(f).decode("ascii") for f in files]
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [2], "data": encoded}]}
    response = client.post("/v2/models/frcnn/infer", json=body)
    assert response.status_code == 200, response.text
    tensors = {o["name"]: o for o in response.json()["outputs"]}
    boxes = np.array(tensors["boxes"]["data"], dtype=np.float32).reshape(tensors["boxes"]["shape"])
    scores = np.array(tensors["scores"]["data"]).reshape(tensors["scores"]["shape"])
    labels = np.array(tensors["labels"]["data"]).reshape(tensors["labels"]["shape"])
    v1 = client.post("/v1/models/frcnn/predict", json={"images": encoded}).json()["results"]
    assert boxes.shape == (2, 3, 4) and tensors["labels"]["datatype"] == "INT64"
    for i, result in enumerate(v1):
        found = result["detections"]
        np.testing.assert_allclose(boxes[i, : len(found)], [d["box"] for d in found], rtol=1e-6)
        np.testing.assert_allclose(scores[i, : len(found)], [d["score"] for d in found], rtol=1e-6)
        assert labels[i, : len(found)].tolist() == [d["index"] for d in found]
        assert (labels[i, len(found) :] == -1).all() and (scores[i, len(found) :] == 0).all()


def test_the_explain_parameter_gives_each_boxs_map_as_v1_does(client, photos):
    encoded = base64.b64encode(photos["chelsea.jpg"].data).decode("ascii")
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": [encoded]}],
            "parameters": {"explain": {"method": "eigencam"}}}  # fmt: skip
    response = client.post("/v2/models/frcnn/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    tensors = {o["name"]: o for o in answer["outputs"]}
    assert tensors["saliency"]["shape"] == [1, 3, 128, 128]
    saliency = np.array(tensors["saliency"]["data"], dtype=np.float32).reshape(1, 3, 128, 128)
    assert answer["parameters"]["explain"]["method"] == {"name": "eigencam", "layer": "backbone.body.16"}
    v1 = client.post("/v1/models/frcnn/explain", json={"images": [encoded], "method": "eigencam",
                                                        "output": {"saliency": "float32"}}).json()  # fmt: skip
    found = v1["results"][0]["detections"]
    for j, detection in enumerate(found):
        sent = detection["explanations"][0]["saliency"]
        expected = np.frombuffer(base64.b64decode(sent["data"]), dtype="<f4").reshape(sent["shape"])
        np.testing.assert_allclose(saliency[0, j], expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))
    assert not saliency[0, len(found) :].any()
    boxes = np.array(tensors["boxes"]["data"], dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_allclose(boxes[0, : len(found)], [d["box"] for d in found], rtol=1e-6)


def test_a_class_target_for_a_detector_is_refused_naming_the_field(client, photos):
    encoded = base64.b64encode(photos["chelsea.jpg"].data).decode("ascii")
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": [encoded]}],
            "parameters": {"explain": {"method": "gradient", "target": 3}}}  # fmt: skip
    response = client.post("/v2/models/frcnn/infer", json=body)
    assert response.status_code == 400, response.text
    assert "detections" in response.json()["error"]
