"""Score-CAM and Eigen-CAM over HTTP: forward-only passes, Score-CAM's cost per channel of its layer.

shapes18 is resnet18 at 64x64: layer1 has 64 channels, layer4 (the default CAM layer) 512; the tests' app
allows 200 passes per image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

STREAM = {"accept": "text/event-stream"}


def rows(client) -> dict[str, float]:
    """saliency_rows_total by kind: the rows (model passes) the device ran."""
    out = {"forward": 0.0, "backward": 0.0}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("saliency_rows_total"):
            kind = line.split('kind="')[1].split('"')[0]
            out[kind] += float(line.split()[-1])
    return out


def ran(client, body: dict) -> tuple[dict, dict[str, float]]:
    """The response to `body` and the rows it ran, by kind."""
    before = rows(client)
    response = client.post("/v1/models/shapes18/explain", json=body)
    assert response.status_code == 200, response.text
    after = rows(client)
    return response.json(), {kind: after[kind] - before[kind] for kind in after}


@pytest.mark.parametrize(("key", "field"), [("method", "method.layer"), ("methods", "methods.0.layer")])
def test_scorecam_on_a_layer_with_too_many_channels_is_refused_naming_the_layer(client, photos, key, field):
    spec = {"name": "scorecam"}  # layer4: 512 channels, 513 passes per image
    body = {"images": [photos["chelsea.jpg"].b64], key: spec if key == "method" else [spec]}
    before = rows(client)
    response = client.post("/v1/models/shapes18/explain", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_parameter", field)
    assert "513 forward passes" in error["message"] and "200" in error["message"]
    assert rows(client) == before  # refused before any pass


def test_scorecam_runs_one_forward_pass_per_channel_and_no_backward(client, photos):
    body = {"images": [photos["chelsea.jpg"].b64], "method": {"name": "scorecam", "layer": "layer1"}}
    result, passes = ran(client, body)
    assert passes == {"forward": 65, "backward": 0}  # the image, then masked by each of 64 channels
    assert result["method"] == {"name": "scorecam", "layer": "layer1"}


def test_scorecam_progress_counts_its_passes(client, photos):
    body = {"images": [photos["chelsea.jpg"].b64] * 2, "method": {"name": "scorecam", "layer": "layer1"}}
    response = client.post("/v1/models/shapes18/explain", json=body, headers=STREAM)
    assert response.status_code == 200, response.text
    events = [block.splitlines() for block in response.text.strip().split("\n\n")]
    progress = [json.loads(lines[1].removeprefix("data: ")) for lines in events if lines[0] == "event: progress"]
    assert progress and all(p["total"] == 130 for p in progress)  # 2 x (64 channels + the image)
    dones = [p["done"] for p in progress]  # events come at most every 100 ms: the last need not be at 130
    assert dones == sorted(dones) and dones[-1] <= 130
    assert events[-1][0] == "event: result"


def test_eigencam_is_one_forward_pass_and_the_same_map_for_any_target(client, photos, as_array):
    image = photos["chelsea.jpg"].b64
    first, passes = ran(client, {"images": [image], "method": "eigencam", "target": 0})
    assert passes == {"forward": 1, "backward": 0}
    other, _ = ran(client, {"images": [image], "method": "eigencam", "target": 3})
    assert [r["target"]["index"] for r in (first["results"][0], other["results"][0])] == [0, 3]
    np.testing.assert_array_equal(as_array(first["results"][0]["saliency"]), as_array(other["results"][0]["saliency"]))
    assert as_array(first["results"][0]["saliency"]).max() == 1.0


def test_eigencam_rides_on_gradcams_pass(client, photos):
    """The clean pass records Eigen-CAM's layer without gradients, beside Grad-CAM's layer with them."""
    body = {"images": [photos["chelsea.jpg"].b64], "methods": ["gradcam", {"name": "eigencam", "layer": "layer3"}]}
    result, passes = ran(client, body)
    assert passes == {"forward": 0, "backward": 1}
    assert [e["method"]["layer"] for e in result["results"][0]["explanations"]] == ["layer4", "layer3"]


def test_scorecam_beside_other_methods_gives_its_own_map(client, photos, as_array):
    image, scorecam = photos["chelsea.jpg"].b64, {"name": "scorecam", "layer": "layer2"}
    together, passes = ran(client, {"images": [image], "methods": ["gradcam", scorecam, "eigencam"]})
    assert passes == {"forward": 128, "backward": 1}  # the clean pass is shared, with gradients for Grad-CAM
    alone, _ = ran(client, {"images": [image], "method": scorecam})
    shared = together["results"][0]["explanations"][1]["saliency"]
    np.testing.assert_allclose(as_array(shared), as_array(alone["results"][0]["saliency"]), rtol=1e-4, atol=1e-5)
