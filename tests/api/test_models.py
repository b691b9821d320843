"""GET /v1/models and /v1/models/{name}."""

from __future__ import annotations

FIELDS = {
    "name",
    "architecture",
    "input_size",
    "num_classes",
    "labels",
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
    assert info["reason"] == "cannot read weights: not a tensors-only PyTorch checkpoint"
    assert info["layers"] is None


def test_lazy_model_is_not_loaded_until_first_use(make_client, photos):
    with make_client() as client:
        info = client.get("/v1/models/crop18").json()
        assert (info["state"], info["layers"], info["default_layer"]) == ("not_loaded", None, None)
        assert info["labels"] is False and info["weights"] is False
        response = client.post("/v1/models/crop18/predict", json={"images": [photos["chelsea.jpg"].b64]})
        assert response.status_code == 200, response.text
        info = client.get("/v1/models/crop18").json()
        assert info["state"] == "loaded"
        assert info["default_layer"] == "layer4" and "layer4" in info["layers"]


def test_unknown_model_is_404(client):
    response = client.get("/v1/models/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_model"


def test_a_torchscript_model_is_shown_by_file_name_not_server_path():
    from service.api.models import public_architecture

    assert public_architecture("torchscript:/srv/models/secret/net.pt") == "torchscript:net.pt"
    assert public_architecture("torchvision:resnet18") == "torchvision:resnet18"
