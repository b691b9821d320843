"""The client against a live server with a detection model: `predict` gives `Detected` (boxes as
dataclasses), `explain` gives `DetectionsExplained` (per image, per box, numpy maps and PIL overlays), equal to
the JSON the server sends; the client's own boxes go through as `target`."""

from __future__ import annotations

import base64
import io
import os

import httpx
import numpy as np
import pytest
from detectors import write_detector
from PIL import Image
from saliency_client import Client, Detected, Detection, DetectionsExplained
from servers import serving


def saliency_array(sent: dict) -> np.ndarray:
    """The JSON's float32 map, decoded here (C-order little-endian bytes)."""
    return np.frombuffer(base64.b64decode(sent["data"]), dtype="<f4").reshape(sent["shape"])


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("client-detection")
    config = write_detector(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    with serving(["--config", str(config)], env, folder / "server.log", startup_s=180) as (_, base):
        yield base


@pytest.fixture(scope="module")
def photo() -> bytes:
    rng = np.random.default_rng(0)
    coarse = Image.fromarray((rng.random((6, 9, 3)) * 255).astype(np.uint8)).resize((180, 120), Image.BILINEAR)
    buffer = io.BytesIO()
    coarse.save(buffer, "PNG")
    return buffer.getvalue()


def raw(url: str, path: str, body: dict) -> dict:
    response = httpx.post(url + path, json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_predict_gives_boxes_as_dataclasses(url, photo):
    with Client(url) as client:
        answer = client.predict("frcnn", photo)
    assert isinstance(answer, Detected) and answer.model == "frcnn"
    body = raw(url, "/v1/models/frcnn/predict", {"images": [base64.b64encode(photo).decode()]})
    (found,) = answer.detections
    assert [vars(d) | {"box": list(d.box), "explanations": None} for d in found] == [
        {**d, "explanations": None} for d in body["results"][0]["detections"]
    ]
    assert all(isinstance(d, Detection) and d.explanations == [] for d in found) and len(found) == 3


def test_explain_gives_a_map_per_box_and_method(url, photo):
    methods = ["gradient", "eigencam"]
    output = {"saliency": "float32", "overlay": True}
    with Client(url) as client:
        answer = client.explain("frcnn", photo, methods=methods, output=output)
        mine = client.explain("frcnn", photo, method="gradient", target=[{"box": [10, 10, 90, 100], "label": 2}])
    assert isinstance(answer, DetectionsExplained) and [m["name"] for m in answer.methods] == methods
    body = raw(url, "/v1/models/frcnn/explain",
               {"images": [base64.b64encode(photo).decode()], "methods": methods, "output": output})  # fmt: skip
    (result,) = answer.results
    assert result.overlay is not None and result.overlay.size == (180, 120)
    for detection, expected in zip(result.detections, body["results"][0]["detections"], strict=True):
        assert list(detection.box) == expected["box"] and detection.label == expected["label"]
        for explanation, sent in zip(detection.explanations, expected["explanations"], strict=True):
            # two requests: passes sized by time may batch their rows differently (rounding, not values)
            expected_map = saliency_array(sent["saliency"])
            assert np.allclose(explanation.saliency, expected_map, rtol=0, atol=1e-5 * np.abs(expected_map).max())
            assert explanation.overlay is not None and explanation.overlay.size == (180, 120)
    assert isinstance(mine, DetectionsExplained)
    (box,) = mine.results[0].detections
    assert box.box == (10.0, 10.0, 90.0, 100.0) and box.index == 2 and box.explanation.saliency.shape == (128, 128)
