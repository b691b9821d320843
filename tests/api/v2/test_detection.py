"""A detection model through the Open Inference Protocol v2: its metadata names boxes, scores and labels, and
an inference answers v1's detections as tensors padded to max_detections; explaining stays on v1 (a 4xx)."""

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


def test_explaining_a_detector_over_v2_is_refused_with_the_way_to_do_it(client, photos):
    encoded = base64.b64encode(photos["chelsea.jpg"].data).decode("ascii")
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": [encoded]}],
            "parameters": {"explain": {"method": "gradient"}}}  # fmt: skip
    response = client.post("/v2/models/frcnn/infer", json=body)
    assert response.status_code == 400, response.text
    assert "/v1/models/frcnn/explain" in response.json()["error"]
