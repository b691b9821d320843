"""POST /v1/models/{name}/sanity over HTTP, on the demo models: values against a direct computation, the
served model untouched, progress events, and the client's mistakes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from service.core.sanity.randomize import blocks, fresh_copy, randomize
from service.demo import shapes
from service.main import create_app
from service.settings import Settings

N = 3


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def samples():
    data = shapes.generate(N, 777)
    encoded = []
    for image in data.images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return data, encoded


def direct_similarity(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    a, b = np.abs(original), np.abs(other)
    rho = spearmanr(a.ravel(), b.ravel()).statistic
    return float(rho), float(structural_similarity(a / a.max(), b / b.max(), data_range=1.0))


def gradient_maps(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    x = x.clone().requires_grad_(True)
    score = model(x).gather(1, targets[:, None]).sum()
    (grad,) = torch.autograd.grad(score, x)
    return grad.abs().amax(dim=1).numpy()


def test_model_randomization_equals_the_definition_and_leaves_the_served_model_alone(client, samples):
    data, images = samples
    loaded = client.app.state.services.pool.get("shapes")
    served = [loaded.module, loaded.prepared.original]
    state = [{k: v.clone() for k, v in m.state_dict().items()} for m in served]
    x = shapes.to_tensor(data.images)
    with torch.no_grad():
        logits = loaded.module(x)

    r = client.post("/v1/models/shapes/sanity", json={"images": images, "methods": ["gradient"], "seed": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    (result,) = body["results"]
    assert result["steps"] == [
        "fc",
        "fc+block4",
        "fc+block4+block3",
        "fc+block4+block3+block2",
        "fc+block4+block3+block2+block1",
    ]
    targets = torch.tensor([t["index"] for t in body["targets"]])
    assert torch.equal(targets, logits.argmax(1))

    # The definition, step by step: the same classes, on a copy randomized cumulatively with seeds 4, 5, ...
    copy = fresh_copy(loaded)
    original = gradient_maps(copy, x, targets)
    for i, (_, block) in enumerate(blocks(copy)):
        randomize(block, 4 + i)
        other = gradient_maps(copy, x, targets)
        rho, ssim = np.mean([direct_similarity(a, b) for a, b in zip(original, other, strict=True)], axis=0)
        assert result["spearman"][i] == pytest.approx(rho, abs=1e-4)
        assert result["ssim"][i] == pytest.approx(ssim, abs=1e-4)

    # The served model: every parameter and buffer, and its outputs, exactly as before.
    for module, before in zip(served, state, strict=True):
        for key, value in module.state_dict().items():
            assert torch.equal(value, before[key]), key
    with torch.no_grad():
        assert torch.equal(loaded.module(x), logits)


def test_the_seed_decides_the_randomized_model(client, samples):
    _, images = samples

    def curve(seed: int) -> list[float]:
        body = {"images": images[:1], "methods": ["gradcam"], "seed": seed}
        return client.post("/v1/models/shapes/sanity", json=body).json()["results"][0]["spearman"]

    assert curve(1) == curve(1)
    assert curve(1) != curve(2)


def test_data_randomization_compares_with_the_reference_model(client, samples):
    _, images = samples
    body = {
        "images": images,
        "methods": ["gradient", "gradcam"],
        "test": "data_randomization",
        "reference_model": "shapes-watermark",
    }
    r = client.post("/v1/models/shapes/sanity", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["reference_model"] == "shapes-watermark"
    for result in out["results"]:
        assert result["steps"] == ["shapes-watermark"]
        assert len(result["spearman"]) == len(result["ssim"]) == 1
        assert result["verdict"] in ("pass", "fail")
        assert result["threshold"]["spearman_below"] > 0
    assert out["results"][1]["method"]["layer"] == "block4"


def test_progress_events_count_every_set_of_maps(client, samples):
    _, images = samples
    body = {"images": images[:1], "methods": [{"name": "integrated_gradients", "steps": 8}]}
    with client.stream("POST", "/v1/models/shapes/sanity", json=body, headers={"Accept": "text/event-stream"}) as r:
        text = "".join(r.iter_text())
    events = [block for block in text.split("\n\n") if block]
    progress = [json.loads(e.split("data: ")[1]) for e in events if e.startswith("event: progress")]
    assert events[-1].startswith("event: result")
    # 10 rows a set (8 path points, the baseline and the input), for the original and 5 steps.
    assert progress and all(p["total"] == 10 * 6 for p in progress)
    assert progress[-1]["done"] > 10  # past the first set: the count goes on across sets
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    result = json.loads(events[-1].split("data: ", 1)[1])
    assert len(result["results"][0]["spearman"]) == 5


def test_text_models_are_checked_by_rank_correlation(client):
    body = {"texts": ["the kettle is great", "never buying this again"], "methods": ["gradient"]}
    r = client.post("/v1/models/reviews/sanity", json=body)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    steps = result["steps"]  # the classifier, then BERT's parts output first, one encoder layer at a time
    assert steps[0] == "classifier" and steps[1] == "classifier+bert.pooler"
    assert steps[-1].endswith("+bert.encoder.layer.0+bert.embeddings")
    assert result["ssim"] == [None] * len(steps) and result["threshold"]["ssim_below"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"methods": ["gradient"], "test": "data_randomization"}, 422, "reference_model"),
        ({"methods": ["gradient"], "test": "data_randomization", "reference_model": "reviews"}, 422, "reference_model"),
        ({"methods": ["gradient"], "test": "data_randomization", "reference_model": "nope"}, 404, None),
        ({"methods": ["gradient"], "test": "data_randomization", "reference_model": "shapes"}, 422, "reference_model"),
        ({"methods": None}, 422, "methods"),
        ({}, 422, "methods"),
        ({"methods": ["gradient"], "reference_model": "shapes-watermark"}, 422, "reference_model"),
        ({"methods": [{"name": "rise", "masks": 1000}]}, 413, "images"),
        ({"methods": ["nope"]}, 404, "methods.0.name"),
        ({"methods": []}, 422, "methods"),
        ({"methods": ["gradient"], "test": "everything"}, 422, "test"),
        ({"methods": ["gradient"], "seed": -1}, 422, "seed"),
        ({"methods": ["gradient"], "target": 9}, 422, "target"),
    ],
)
def test_mistakes_get_a_clear_error(client, samples, body, status, field):
    _, images = samples
    r = client.post("/v1/models/shapes/sanity", json={"images": images, **body})
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json()["error"]["field"] == field


def test_texts_for_an_image_model_are_refused(client):
    r = client.post("/v1/models/shapes/sanity", json={"texts": ["hello"], "methods": ["gradient"]})
    assert r.status_code == 422


def test_a_deadline_drops_the_rest_of_the_work(client, samples):
    _, images = samples
    body = {"images": images, "methods": [{"name": "smoothgrad", "samples": 200}], "timeout_ms": 50}
    r = client.post("/v1/models/shapes/sanity", json=body)
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "deadline_exceeded"
    # The device is free again: a small check right after it is answered.
    small = client.post("/v1/models/shapes/sanity", json={"images": images[:1], "methods": ["gradient"]})
    assert small.status_code == 200


def test_a_raw_image_body_takes_the_spec_from_the_query(client, samples):
    data, _ = samples
    buffer = io.BytesIO()
    Image.fromarray(data.images[0]).save(buffer, "PNG")
    query = {"methods": '["gradient", {"name": "gradcam"}]', "seed": "2"}
    r = client.post(
        "/v1/models/shapes/sanity", content=buffer.getvalue(), params=query, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 200, r.text
    assert [m["method"]["name"] for m in r.json()["results"]] == ["gradient", "gradcam"]
    missing = client.post("/v1/models/shapes/sanity", content=buffer.getvalue(), headers={"Content-Type": "image/png"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "methods"
