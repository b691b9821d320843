"""POST /v1/models/{name}/sanity for a detector (the demo's, as served by default): the cascade over the
detector's parts, each box's similarity against a direct computation, the served model untouched, the
client's boxes, and 4xx for what a detector cannot be checked by."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from service.core.sanity.randomize import blocks, fresh_copy, randomize
from service.demo import scenes
from service.main import create_app
from service.models.detection import affinity
from service.settings import Settings

MODEL = "shapes-detector"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(device="cpu"))) as c:
        yield c


@pytest.fixture(scope="module")
def photos():
    found = scenes.generate(2, seed=4242)
    encoded = []
    for image in found.images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return found, encoded


def gradient_map(model: torch.nn.Module, x: torch.Tensor, box: torch.Tensor) -> np.ndarray:
    """The gradient of the box's affinity to the model's detections, |.| max over channels."""
    x = x[None].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(affinity(model(x), box[None]).sum(), x)
    return grad[0].abs().amax(dim=0).numpy()


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a, b = np.abs(a), np.abs(b)
    if np.ptp(b) == 0:  # a blank map (the randomized detector finds nothing there) resembles nothing
        return 0.0, 0.0
    rho = float(spearmanr(a.ravel(), b.ravel()).statistic)
    return rho, float(structural_similarity(a / a.max(), b / b.max(), data_range=1.0))


def test_model_randomization_over_the_detectors_parts_equals_the_definition(client, photos):
    found, images = photos
    loaded = client.app.state.services.pool.get(MODEL)
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    x = scenes.to_tensor(found.images)
    with torch.no_grad():
        raw = loaded.module(x)

    r = client.post(f"/v1/models/{MODEL}/sanity", json={"images": images, "methods": ["gradient"], "seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    (result,) = body["results"]
    parts = [
        "head.regression_head",
        "head.classification_head",
        "backbone.body.stage4",
        "backbone.body.stage3",
        "backbone.body.stage2",
        "backbone.body.stage1",
    ]
    assert result["steps"] == ["+".join(parts[: i + 1]) for i in range(len(parts))]
    assert body["targets"] == []
    # The boxes checked are the served model's detections over min_score, as predict reports them.
    predicted = client.post(f"/v1/models/{MODEL}/predict", json={"images": images}).json()
    assert body["detections"] == [p["detections"] for p in predicted["results"]]
    boxes = []
    for i in range(len(images)):
        kept = raw[i][raw[i][:, 4] >= loaded.spec.min_score][: loaded.spec.max_detections]
        boxes += [(i, torch.cat([row[:4], row[5:6]])) for row in kept]
    assert len(boxes) == sum(len(d) for d in body["detections"]) >= 2

    copy = fresh_copy(loaded)
    original = [gradient_map(copy, x[i], box) for i, box in boxes]
    for step, (_, block) in enumerate(blocks(copy)):
        randomize(block, 3 + step)
        other = [gradient_map(copy, x[i], box) for i, box in boxes]
        rho, ssim = np.mean([similarity(a, b) for a, b in zip(original, other, strict=True)], axis=0)
        # The service's rows share passes (batched), ours run one at a time: float rounding reorders pixels
        # whose gradients are nearly equal, which moves Spearman's rho in its fourth digit.
        assert result["spearman"][step] == pytest.approx(rho, abs=1e-3)
        assert result["ssim"][step] == pytest.approx(ssim, abs=1e-4)
    # Once the backbone's first stages are random the detector finds nothing like the boxes: blank maps.
    assert result["spearman"][-1] == result["ssim"][-1] == 0.0
    assert result["verdict"] in ("pass", "fail") and result["threshold"]["spearman_below"] == 0.5

    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, before[key]), key
    with torch.no_grad():
        assert torch.equal(loaded.module(x), raw)


def test_the_clients_boxes_are_the_ones_checked_by_every_method(client, photos):
    found, images = photos
    box = found.boxes[0][0].tolist()
    label = int(found.labels[0][0])
    body = {"images": images[:1], "methods": ["gradcam", "drise"], "target": [{"box": box, "label": label}]}
    r = client.post(f"/v1/models/{MODEL}/sanity", json={**body, "seed": 1})
    assert r.status_code == 200, r.text
    checked = r.json()
    assert [[d["box"] for d in image] for image in checked["detections"]] == [[box]]
    assert [m["method"]["name"] for m in checked["results"]] == ["gradcam", "drise"]
    for method in checked["results"]:
        assert len(method["spearman"]) == len(method["steps"]) == 6
        assert all(-1.0 <= rho <= 1.0 for rho in method["spearman"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"test": "data_randomization", "reference_model": "shapes-detector-watermark"}, "test"),
        ({"reference_model": "shapes-detector-watermark"}, "reference_model"),
        ({"target": [{"box": [500, 500, 600, 600], "label": 1}]}, "target"),  # outside the image
        ({"target": [{"box": [0, 0, 5, 5], "label": 99}]}, "target"),
        ({"methods": ["guided_backprop"]}, "method"),
    ],
)
def test_what_a_detector_cannot_be_checked_by_is_a_4xx(client, photos, body, field):
    _, images = photos
    r = client.post(f"/v1/models/{MODEL}/sanity", json={"images": images[:1], "methods": ["gradient"], **body})
    assert 400 <= r.status_code < 500, r.text
    assert field in r.json()["error"]["field"], r.json()


def test_an_image_without_detections_asks_for_boxes_and_a_huge_cascade_is_413(client, photos):
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128)).save(buffer, "PNG")
    blank = base64.b64encode(buffer.getvalue()).decode()
    r = client.post(f"/v1/models/{MODEL}/sanity", json={"images": [blank], "methods": ["gradient"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "target", r.text
    _, images = photos
    # Counted before any work with max_detections (10 here) boxes an image: 2 x 10 x 200 rows x 7 sets of maps.
    huge = {"images": images, "methods": [{"name": "integrated_gradients", "steps": 200}]}
    r = client.post(f"/v1/models/{MODEL}/sanity", json=huge)
    assert r.status_code == 413, r.text
