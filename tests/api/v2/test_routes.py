"""v2 health, readiness and metadata in-process: the same readiness as /readyz, 404s, API keys."""

from __future__ import annotations

from service.keys import hash_key


def test_liveness_is_open_and_readiness_is_readyz(client):
    # The session app preloads `broken`, whose weights are not a state_dict: never ready.
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    readyz = client.get("/readyz")
    assert ready.status_code == readyz.status_code == 503
    assert ready.json()["error"].startswith("not ready: broken: ")
    assert set(readyz.json()["models"]) == {"broken"}


def test_model_readiness_follows_the_models_state(client):
    assert client.get("/v2/models/shapes18/ready").json() == {"name": "shapes18", "ready": True}
    # Lazy and not loaded yet: it loads on its first request, so it is ready (as for /readyz).
    assert client.get("/v1/models/crop18").json()["state"] in ("not_loaded", "loaded")
    assert client.get("/v2/models/crop18/ready").status_code == 200
    broken = client.get("/v2/models/broken/ready")
    assert broken.status_code == 503 and broken.json()["error"].startswith("model 'broken' is not ready: ")
    unknown = client.get("/v2/models/nope/ready")
    assert unknown.status_code == 404 and "unknown model 'nope'" in unknown.json()["error"]


def test_ready_when_every_preload_model_loads_and_not_while_draining(make_client):
    with make_client() as fresh:
        assert fresh.get("/v2/health/ready").json() == {"ready": True}
        fresh.app.state.draining = True
        assert fresh.get("/v2/health/ready").json() == {"error": "draining"}
        assert fresh.get("/v2/models/shapes18/ready").status_code == 503


def test_metadata_of_a_model_that_is_not_loaded_comes_from_its_config(client):
    body = client.get("/v2/models/crop18").json()
    assert body["inputs"][1] == {"name": "input", "datatype": "FP32", "shape": [-1, 3, 64, 64]}
    assert body["outputs"][0] == {"name": "logits", "datatype": "FP32", "shape": [-1, 4]}


def test_other_v2_paths_are_v2_404s(client):
    versioned = client.get("/v2/models/shapes18/versions/1/ready")
    assert versioned.status_code == 404
    assert "models have no versions here" in versioned.json()["error"]
    assert client.get("/v2/nothing").json() == {"error": "no v2 endpoint GET /v2/nothing"}
    wrong_method = client.get("/v2/models/shapes18/infer")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json() == {"error": "GET is not allowed on /v2/models/shapes18/infer: use POST"}


def test_api_keys_guard_everything_but_the_probes(make_client):
    key = "v2-test-key"
    with make_client(api_key_hashes=f"{hash_key(key)}:v2") as keyed:
        assert keyed.get("/v2/health/live").status_code == 200
        assert keyed.get("/v2/health/ready").status_code == 200
        for path in ("/v2", "/v2/models/shapes18", "/v2/models/shapes18/ready"):
            refused = keyed.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["error"].startswith("missing or unknown API key")
            assert keyed.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        infer = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 64, 64], "data": [0.0] * 12288}]}
        assert keyed.post("/v2/models/shapes18/infer", json=infer).status_code == 401
        answered = keyed.post("/v2/models/shapes18/infer", json=infer, headers={"X-API-Key": key})
        assert answered.status_code == 200, answered.text


def test_openapi_document_describes_v2(client):
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    error = {"$ref": "#/components/schemas/ErrorV2"}
    for status in ("400", "401", "404", "413", "503", "504"):
        assert infer["responses"][status]["content"]["application/json"]["schema"] == error
    assert document["components"]["schemas"]["ErrorV2"]["properties"] == {"error": {"title": "Error", "type": "string"}}
    # The probes are open; the rest is behind the keys, as v1.
    assert "security" not in paths["/v2/health/live"]["get"] and "security" not in paths["/v2/health/ready"]["get"]
    assert all("security" in paths[p]["get"] for p in ("/v2", "/v2/models/{name}", "/v2/models/{name}/ready"))
    assert not [p for p in paths if "{rest" in p]  # the catch-all is not an operation
