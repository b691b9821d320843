"""A torchvision Faster R-CNN served as a detection model, over HTTP: predictions equal the model called
directly (boxes mapped back from the letterbox to the photo), one map per box and method, the client's own
boxes, overlays with the boxes drawn, and 4xx for every malformed or oversized target."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from detectors import LABELS, faster_rcnn, write_detector
from fastapi.testclient import TestClient
from PIL import Image

from service.main import create_app
from service.settings import Settings

from ..conftest import LIMITS, png_image, saliency_array

SIZE = 128


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_detector(tmp_path_factory.mktemp("detection"))
    with TestClient(create_app(Settings(config=config, **{**LIMITS, "max_passes_per_request": 1500}))) as test_client:
        yield test_client


def post(client, path: str, body: dict, status: int = 200) -> dict:
    response = client.post(f"/v1/models/frcnn/{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


def direct(photo) -> list[dict]:
    """What the torchvision model finds, called on the letterboxed photo, its boxes in the photo's pixels."""
    picture = Image.open(io.BytesIO(photo.data)).convert("RGB")
    scale = min(SIZE / picture.width, SIZE / picture.height)
    w, h = round(picture.width * scale), round(picture.height * scale)
    canvas = Image.new("RGB", (SIZE, SIZE))
    left, top = (SIZE - w) // 2, (SIZE - h) // 2
    canvas.paste(picture.resize((w, h), Image.Resampling.BILINEAR), (left, top))
    x = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float()[None] / 255
    with torch.no_grad():
        (found,) = faster_rcnn(seed=0)(list(x))
    sx, sy = w / picture.width, h / picture.height
    out = []
    best = zip(found["boxes"][:3].tolist(), found["labels"][:3].tolist(), found["scores"][:3], strict=True)
    for box, label, score in best:
        x0, y0, x1, y1 = (box[0] - left) / sx, (box[1] - top) / sy, (box[2] - left) / sx, (box[3] - top) / sy
        clipped = [min(max(x0, 0), picture.width), min(max(y0, 0), picture.height),
                   min(max(x1, 0), picture.width), min(max(y1, 0), picture.height)]  # fmt: skip
        out.append({"box": clipped, "index": label, "label": LABELS[label], "score": float(score)})
    return out


def test_predictions_are_the_torchvision_models_boxes_on_the_photo(client, photos):
    photo = photos["chelsea.jpg"]  # 451 x 300: letterboxed with bands above and below
    (result,) = post(client, "predict", {"images": [photo.b64]})["results"]
    expected = direct(photo)
    assert [(d["index"], d["label"]) for d in result["detections"]] == [(e["index"], e["label"]) for e in expected]
    for got, want in zip(result["detections"], expected, strict=True):
        np.testing.assert_allclose(got["box"], want["box"], rtol=0, atol=1e-3)
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)
    info = client.get("/v1/models/frcnn").json()
    assert (info["kind"], info["input_size"], info["default_layer"]) == ("detection", [SIZE, SIZE], "backbone.body.16")


@pytest.mark.parametrize("method", ["gradient", "drise", "gradcam", "eigencam"])
def test_every_detection_gets_its_own_map(client, photos, method):
    photo = photos["chelsea.jpg"]
    spec = {"name": method, "masks": 8} if method == "drise" else method
    body = {"images": [photo.b64], "method": spec, "output": {"saliency": "float32", "overlay": True}}
    answer = post(client, "explain", body)
    (result,) = answer["results"]
    predicted = post(client, "predict", {"images": [photo.b64]})["results"][0]["detections"]
    assert [d["box"] for d in result["detections"]] == [d["box"] for d in predicted]
    assert [d["score"] for d in result["detections"]] == pytest.approx([d["score"] for d in predicted], abs=1e-6)
    maps = []
    for detection in result["detections"]:
        (explanation,) = detection["explanations"]
        values = saliency_array(explanation["saliency"])
        assert values.shape == (SIZE, SIZE) and np.isfinite(values).all()
        overlay = png_image(explanation["overlay_png"])
        assert overlay.size == (photo.width, photo.height)
        maps.append(values)
    assert png_image(result["overlay_png"]).size == (photo.width, photo.height)
    if method == "eigencam":  # the one method without a target: the same map for every box (rows of one pass:
        # equal up to the rounding a batch's row may get)
        assert all(np.allclose(maps[0], m, rtol=0, atol=1e-5 * float(maps[0].max())) for m in maps[1:])
        assert maps[0].max() > 0
    elif method == "drise":  # a random detector matches its boxes in most masked images: maps near uniform
        assert all(m.min() >= 0 and m.max() > 0 for m in maps)
    else:
        assert any(not np.array_equal(maps[0], m) for m in maps[1:])


def test_a_box_the_client_gives_is_explained_and_scored_by_its_best_match(client, photos):
    # A square photo: no letterbox bands, so reported boxes are the detector's own (a box reaching into the
    # bands of a wider photo is reported clipped to the photo, and would no longer be its detection's box).
    photo = square(photos["chelsea.jpg"])
    top = post(client, "predict", {"images": [photo.b64]})["results"][0]["detections"][0]
    mine = {"box": [10, 20, 200, 250], "label": "square"}
    body = {"images": [photo.b64], "method": "gradient", "target": [{"box": top["box"], "label": top["index"]}, mine]}
    found = post(client, "explain", body)["results"][0]["detections"]
    assert [d["label"] for d in found] == [top["label"], "square"]
    np.testing.assert_allclose(found[0]["box"], top["box"], atol=1e-3)
    np.testing.assert_allclose(found[1]["box"], mine["box"], atol=1e-3)
    assert found[0]["score"] == pytest.approx(top["score"], abs=1e-4)  # its own detection: IoU 1 x its score
    assert 0 <= found[1]["score"] < 1
    per_image = dict(body, target=[[mine]])
    assert post(client, "explain", per_image)["results"][0]["detections"][0]["box"] == found[1]["box"]


@pytest.mark.parametrize("method", ["gradient", "eigencam"])
def test_each_box_has_its_own_deletion_and_insertion_curves(client, photos, method):
    """Scored by the box's affinity: deletion starts at the clean photo, where that is the detection's score."""
    photo = square(photos["chelsea.jpg"])
    evaluate = {"metrics": ["deletion", "insertion"], "steps": 4, "seed": 1}
    body = {"images": [photo.b64], "method": method, "evaluate": evaluate}
    found = post(client, "explain", body)["results"][0]["detections"]
    assert len(found) == 3
    for detection in found:
        curves = detection["explanations"][0]["faithfulness"]
        assert set(curves) == {"deletion", "insertion"}
        deletion = curves["deletion"]
        assert len(deletion["curve"]) == 5 and 0 <= deletion["auc"] <= 1 and 0 <= deletion["random_auc"] <= 1
        assert deletion["curve"][0] == pytest.approx(detection["score"], abs=1e-4)
        # (this random detector scores its anchors alike on any photo: the demo's curves fall, tests/demo)
        assert all(0 <= v <= 1 for v in deletion["curve"] + curves["insertion"]["curve"])


def square(photo):
    picture = Image.open(io.BytesIO(photo.data)).crop((0, 0, photo.height, photo.height))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return type(photo)("square.png", buffer.getvalue(), photo.height, photo.height)


def test_an_overlay_png_draws_every_box(client, photos):
    photo = photos["chelsea.jpg"]
    body = {"images": [photo.b64], "method": "eigencam"}
    response = client.post("/v1/models/frcnn/explain", json=body, headers={"Accept": "image/png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-saliency-detections"] == "3"
    assert json.loads(response.headers["x-saliency-method"])["layer"] == "backbone.body.16"
    assert Image.open(io.BytesIO(response.content)).size == (photo.width, photo.height)


BAD_TARGETS = [
    ([{"box": [float("nan"), 0, 10, 10], "label": 1}], "target.0.box"),
    ([{"box": [5000, 5000, 6000, 6000], "label": 1}], "target"),  # outside the 451 x 300 photo
    ([{"box": [10, 10, 5, 20], "label": 1}], "target.0.box"),  # x1 < x0
    ([{"box": [0, 0, 10, 10], "label": "dog"}], "target.0.label"),
    ([{"box": [0, 0, 10, 10], "label": 7}], "target.0.label"),
    ([{"box": [0, 0, 10, 10], "label": 1}] * 10_000, "target"),  # over max_detections
    ([[{"box": [0, 0, 10, 10], "label": 1}]] * 2, "target"),  # two lists for one image
]


@pytest.mark.parametrize(("target", "field"), BAD_TARGETS)
def test_malformed_targets_are_422s_that_name_the_field(client, photos, target, field):
    body = json.dumps({"images": [photos["chelsea.jpg"].b64], "method": "gradient", "target": target})
    response = client.post("/v1/models/frcnn/explain", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"method": "smoothgrad"}, 422, "does not explain detection models"),
        ({"method": "gradient", "evaluate": {"metrics": ["deletion"], "steps": 256}}, 422, "evaluate needs 514"),
        ({"method": {"name": "drise", "masks": 16000}}, 422, "forward passes per input"),
        # every box is explained: 4 images x (1 prediction + 152 rows x 3 boxes) = 1828 rows, over 1500
        ({"method": {"name": "integrated_gradients", "steps": 150}}, 413, "4 images x 457 model passes = 1828"),
    ],
)
def test_methods_that_cannot_run_are_refused_before_any_work(client, photos, body, status, says):
    response = client.post("/v1/models/frcnn/explain", json={"images": [photos["chelsea.jpg"].b64] * 4, **body})
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
