"""GET /healthz and /readyz."""

from __future__ import annotations

import shutil
import time

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_lists_the_failed_preload_model_with_its_reason(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    # Only the failed model: shapes18 loaded, crop18 is not preloaded.
    assert set(body["models"]) == {"broken"}
    assert body["models"]["broken"] == "cannot read weights: not a tensors-only PyTorch checkpoint or safetensors file"
    assert "/" not in body["models"]["broken"], "no server paths in a public answer"


def test_readyz_is_ready_when_every_preload_model_loaded(make_client):
    with make_client() as client:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "models": {}}
        # A lazy model that is not loaded yet does not hold readiness back.
        assert client.get("/v1/models/crop18").json()["state"] == "not_loaded"


def test_readyz_is_503_while_draining_but_healthz_still_answers(make_client):
    with make_client() as client:
        client.app.state.draining = True
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "draining"
        assert client.get("/healthz").status_code == 200


def test_a_weights_file_that_appears_later_is_served_without_a_restart(model_dir, write_config_file, tmp_path):
    entry = {
        "name": "late",
        "architecture": "torchvision:resnet18",
        "weights": "late.pt",
        "num_classes": 4,
        "input_size": [64, 64],
    }
    config = write_config_file(tmp_path, "late.toml", entry)
    settings = Settings(config=config, device="cpu", load_retry_s=0.2, load_retry_max_s=0.4)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["models"] == {"late": "cannot read weights: file not found"}
        assert client.get("/healthz").status_code == 200
        shutil.copy(model_dir / "resnet18.pt", tmp_path / "late.pt")
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the failed model was never loaded again"
            time.sleep(0.2)
        assert client.get("/v1/models/late").json()["state"] == "loaded"
