"""A detection model through the Open Inference Protocol v2: its metadata names boxes, scores, labels and
saliency, an inference answers v1's detections as tensors padded to max_detections, and with the `explain`
parameter each box's map as `saliency` [N, K, H, W], v1's maps: of the detections, or of the client's boxes
(v1's target shapes, v1's affinities as scores), malformed boxes a 400 in v2's error format."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from detectors import LABELS, write_detector
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


MINE = [{"box": [10, 20, 200, 250], "label": "square"}, {"box": [50, 50, 120, 140], "label": 1}]


def tensor(outputs: dict, name: str) -> np.ndarray:
    return np.array(outputs[name]["data"]).reshape(outputs[name]["shape"])


def index(label: int | str) -> int:
    return LABELS.index(label) if isinstance(label, str) else label


@pytest.mark.parametrize("target", [MINE, [MINE, MINE[1:]]], ids=["for-every-image", "per-image"])
def test_the_clients_boxes_are_explained_and_scored_as_v1_does(client, photos, target):
    encoded = [base64.b64encode(photos[n].data).decode("ascii") for n in ("chelsea.jpg", "flower.png")]
    body = {"inputs": [{"name": "images", "datatype": "BYTES", "shape": [2], "data": encoded}],
            "parameters": {"explain": {"method": "gradient", "target": target}}}  # fmt: skip
    response = client.post("/v2/models/frcnn/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    tensors = {o["name"]: o for o in answer["outputs"]}
    saliency, boxes = tensor(tensors, "saliency"), tensor(tensors, "boxes")
    scores, labels = tensor(tensors, "scores"), tensor(tensors, "labels")
    per_image = target if isinstance(target[0], list) else [target, target]
    # What was explained, per input: the boxes as sent, their labels as class indices.
    assert answer["parameters"]["explain"]["target"] == [
        [{"box": [float(v) for v in b["box"]], "label": index(b["label"])} for b in boxes_i] for boxes_i in per_image
    ]
    v1 = client.post("/v1/models/frcnn/explain", json={"images": encoded, "method": "gradient", "target": target,
                                                        "output": {"saliency": "float32"}}).json()  # fmt: skip
    for i, result in enumerate(v1["results"]):
        found = result["detections"]
        assert len(found) == len(per_image[i])
        np.testing.assert_array_equal(boxes[i, : len(found)], [b["box"] for b in per_image[i]])
        np.testing.assert_allclose(scores[i, : len(found)], [d["score"] for d in found], rtol=1e-6)  # affinities
        want = [index(b["label"]) for b in per_image[i]]
        assert labels[i, : len(found)].tolist() == [d["index"] for d in found] == want
        for j, detection in enumerate(found):
            sent = detection["explanations"][0]["saliency"]
            expected = np.frombuffer(base64.b64decode(sent["data"]), dtype="<f4").reshape(sent["shape"])
            np.testing.assert_allclose(saliency[i, j], expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))
        assert not saliency[i, len(found) :].any() and (labels[i, len(found) :] == -1).all()


NAN_BOX = '{"method": "gradient", "target": [{"box": [NaN, 0, 10, 10], "label": 1}]}'
HOSTILE = {
    "nan": (NAN_BOX, "parameters.explain.target.0.box: box needs finite"),
    "nan-in-a-json-string": (json.dumps(NAN_BOX), "parameters.explain.target.0.box: box needs finite"),
    "infinity": (NAN_BOX.replace("NaN", "-Infinity"), "parameters.explain.target.0.box: box needs finite"),
    "10000-boxes": (
        json.dumps({"target": [{"box": [0, 0, 10, 10], "label": 1}] * 10_000}),
        "parameters.explain.target: at most 3 boxes per image (max_detections)",
    ),
    "outside-the-image": (
        json.dumps({"target": [{"box": [5000, 5000, 6000, 6000], "label": 1}]}),
        "parameters.explain.target: box [5000.0, 5000.0, 6000.0, 6000.0] lies outside the 451x300 image",
    ),
    "x1-before-x0": (json.dumps({"target": [{"box": [10, 10, 5, 20], "label": 1}]}), "parameters.explain.target.0.box"),
    "three-numbers": (json.dumps({"target": [{"box": [0, 0, 10], "label": 1}]}), "parameters.explain.target"),
    "no-box": (json.dumps({"target": [{"label": 1}]}), "parameters.explain.target"),
    "unknown-label": (
        json.dumps({"target": [{"box": [0, 0, 10, 10], "label": "dog"}]}),
        "parameters.explain.target.0.label",
    ),
    "two-lists-for-one-image": (
        json.dumps({"target": [[{"box": [0, 0, 10, 10], "label": 1}]] * 2}),
        "parameters.explain.target: 2 lists of boxes for 1 images",
    ),
    "a-box-not-in-a-list": (json.dumps({"target": {"box": [0, 0, 10, 10], "label": 1}}), "parameters.explain.target"),
    "lists-too-deep": (json.dumps({"target": [[[{"box": [0, 0, 10, 10], "label": 1}]]]}), "parameters.explain.target"),
}


@pytest.mark.parametrize(("explain", "says"), HOSTILE.values(), ids=HOSTILE.keys())
def test_malformed_boxes_are_400s_in_v2s_error_format(client, photos, explain, says):
    encoded = base64.b64encode(photos["chelsea.jpg"].data).decode("ascii")
    # Raw JSON text: NaN and Infinity are what a client's encoder may write (Python's json does), not JSON.
    text = (
        f'{{"inputs": [{{"name": "images", "datatype": "BYTES", "shape": [1], "data": ["{encoded}"]}}], '
        f'"parameters": {{"explain": {explain}}}}}'
    )
    response = client.post("/v2/models/frcnn/infer", content=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and response.json()["error"].startswith(says), response.text
