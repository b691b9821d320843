"""GET /v1/models and /v1/models/{name}."""

from __future__ import annotations

import torch
import torchvision
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

FIELDS = {
    "name",
    "layer_channels",
    "layer_layouts",
    "attention",
    "architecture",
    "input_size",
    "num_classes",
    "labels",
    "label_names",
    "device",
    "state",
    "reason",
    "default_layer",
    "layers",
    "weights",
    "preparation",
    "kind",
    "max_length",
}


def test_lists_every_configured_model_in_config_order(client):
    response = client.get("/v1/models")
    assert response.status_code == 200
    models = response.json()
    assert [m["name"] for m in models][:2] == ["shapes18", "broken"]
    assert {m["name"] for m in models} == {"shapes18", "broken", "crop18"}
    assert all(set(m) == FIELDS for m in models)


def test_loaded_model_shows_its_spec_device_and_cam_layers(client):
    info = client.get("/v1/models/shapes18").json()
    assert info["architecture"] == "torchvision:resnet18"
    assert info["input_size"] == [64, 64]
    assert info["num_classes"] == 4
    assert info["labels"] is True and info["weights"] is True
    assert info["label_names"] == ["circle", "square", "triangle", "star"]
    assert info["device"] == "cpu"
    assert (info["state"], info["reason"]) == ("loaded", None)
    assert info["default_layer"] == "layer4"
    assert {"layer1", "layer2", "layer3", "layer4"} <= set(info["layers"])
    assert "fc" not in info["layers"] and "avgpool" not in info["layers"]
    assert info["preparation"] == ["folded 20 BatchNorm layers into their convolutions"]


def test_one_model_equals_its_entry_in_the_list(client):
    listed = {m["name"]: m for m in client.get("/v1/models").json()}
    assert client.get("/v1/models/shapes18").json() == listed["shapes18"]
    assert client.get("/v1/models/broken").json() == listed["broken"]


def test_failed_model_shows_failed_with_its_reason(client):
    info = client.get("/v1/models/broken").json()
    assert info["state"] == "failed"
    # The short reason only: no server paths, no torch text (those go to the log).
    assert info["reason"] == "cannot read weights: not a tensors-only PyTorch checkpoint or safetensors file"
    assert info["layers"] is None


def test_lazy_model_is_not_loaded_until_first_use(make_client, photos):
    with make_client() as client:
        info = client.get("/v1/models/crop18").json()
        assert (info["state"], info["layers"], info["default_layer"]) == ("not_loaded", None, None)
        assert info["labels"] is False and info["weights"] is False and info["label_names"] is None
        response = client.post("/v1/models/crop18/predict", json={"images": [photos["chelsea.jpg"].b64]})
        assert response.status_code == 200, response.text
        info = client.get("/v1/models/crop18").json()
        assert info["state"] == "loaded" and info["label_names"] is None  # it has none
        assert info["default_layer"] == "layer4" and "layer4" in info["layers"]


def test_unknown_model_is_404(client):
    response = client.get("/v1/models/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_model"


def test_a_torchscript_model_is_shown_by_file_name_not_server_path():
    from service.core.catalog import public_architecture

    assert public_architecture("torchscript:/srv/models/secret/net.pt") == "torchscript:net.pt"
    assert public_architecture("torchvision:resnet18") == "torchvision:resnet18"


def test_torchvision_weights_by_name_over_http(tmp_path, monkeypatch, write_config_file, photos):
    """weights = "torchvision:DEFAULT" from a TORCH_HOME holding the file torchvision expects (random values):
    labels and preprocessing come from the weights' metadata. Without the file the model fails, with a reason."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # no test downloads anything, network or not
    entry = {"name": "squeeze", "architecture": "torchvision:squeezenet1_1", "weights": "torchvision:DEFAULT"}
    settings = Settings(config=write_config_file(tmp_path, "models.toml", entry), device="cpu")
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/models/squeeze").json()
        assert info["state"] == "failed"
        assert info["reason"] == "weights not in the torch cache ($TORCH_HOME) and the download failed: ConnectError"
        assert client.post("/v1/models/squeeze/predict", json={"images": [photos["china.jpg"].b64]}).status_code == 503

    checkpoint = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), checkpoint)
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/models/squeeze").json()
        categories = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"]
        assert (info["state"], info["num_classes"], info["input_size"]) == ("loaded", 1000, [224, 224])
        assert info["label_names"] == categories and info["labels"] is True and info["weights"] is True
        response = client.post("/v1/models/squeeze/predict", json={"images": [photos["china.jpg"].b64], "top_k": 3})
        assert response.status_code == 200, response.text
        assert all(p["label"] == categories[p["index"]] for p in response.json()["results"][0]["predictions"])
