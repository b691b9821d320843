"""torchvision's vit_b_16 and swin_t served as a newcomer configures them (random weights, 224 px): their
layers and layouts in the model info, CAM and attention maps over HTTP, and clear 422s where a method or a
layer cannot explain them."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

from ..conftest import LIMITS, saliency_array, write_config

VIT = {"name": "vit", "architecture": "torchvision:vit_b_16", "num_classes": 10, "input_size": [224, 224]}
SWIN = {"name": "swin", "architecture": "torchvision:swin_t", "num_classes": 10, "input_size": [224, 224]}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("transformers"), "models.toml", VIT, SWIN)
    with TestClient(create_app(Settings(config=config, **{**LIMITS, "max_passes_per_image": 1000}))) as test_client:
        yield test_client


def explain(client, model: str, photo, method) -> dict:
    body = {"images": [photo.b64], "method": method, "output": {"saliency": "float32"}}
    response = client.post(f"/v1/models/{model}/explain", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def saliency(body: dict) -> np.ndarray:
    return saliency_array(body["results"][0]["saliency"])


def test_the_model_info_lists_layers_with_their_layouts(client):
    vit, swin = client.get("/v1/models/vit").json(), client.get("/v1/models/swin").json()
    assert vit["default_layer"] == "encoder.layers.encoder_layer_11.ln_1"
    assert vit["layer_layouts"][vit["default_layer"]] == "tokens (N, 1 + 14x14, 768)"
    assert vit["layer_layouts"]["conv_proj"] == "(N, C, H, W)"
    assert vit["attention"] == "12 blocks x 12 heads over 1 + 14x14 tokens"
    assert swin["default_layer"] == "features.7.1"
    assert swin["layer_layouts"]["features.5"] == "channels-last (N, H, W, C)"
    assert swin["attention"] is None


@pytest.mark.parametrize("method", ["gradcam", "attention_rollout", "attention_relevance", "layercam"])
def test_a_vit_is_explained_over_http(client, photos, method):
    body = explain(client, "vit", photos["chelsea.jpg"], method)
    values = saliency(body)
    assert values.shape == (224, 224) and np.isfinite(values).all() and values.min() >= 0  # the model input's size
    if method == "attention_rollout":  # the same for every class: it needs no trained head
        assert values.max() > values.min()
    else:
        # torchvision builds a ViT with an all-zero head: every logit is 0 whatever the image, so maps of
        # its gradients are 0, as they should be (the demo's trained ViT has real ones: tests/demo).
        assert values.max() == 0
        assert body["method"].get("layer", "encoder.layers.encoder_layer_11.ln_1") == (
            "encoder.layers.encoder_layer_11.ln_1"
        )


def test_a_swin_stage_is_read_channels_last(client, photos):
    body = explain(client, "swin", photos["chelsea.jpg"], {"name": "gradcam", "layer": "features.5"})
    assert saliency(body).max() > 0


def test_what_cannot_explain_a_model_is_a_422_saying_why(client, photos):
    cases = [
        ("swin", "attention_rollout", "no attention probabilities reached"),
        ("swin", {"name": "gradcam", "layer": "avgpool"}, "is not a feature map of a 224x224 input"),
        ("vit", {"name": "gradcam", "layer": "encoder.layers.encoder_layer_0.self_attention"}, "CAM layers"),
        ("vit", "guided_backprop", "no nn.ReLU modules"),
    ]
    for model, method, why in cases:
        body = {"images": [photos["chelsea.jpg"].b64], "method": method}
        response = client.post(f"/v1/models/{model}/explain", json=body)
        assert response.status_code == 422, (model, method, response.text)
        assert why in response.json()["error"]["message"], response.json()
