"""API keys: with keys configured every /v1 route needs one (Bearer or X-API-Key); probes stay open; /metrics
and the docs follow their settings; the key's name, never the key, reaches logs and metrics."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import core
from service.keys import hash_key
from service.main import create_app

KEY, OTHER_KEY = "k-dashboard-0123456789", "k-batch-jobs-9876543210"
V1 = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/shapes18"),
    ("GET", "/v1/methods"),
    ("POST", "/v1/models/shapes18/predict"),
    ("POST", "/v1/models/shapes18/explain"),
]


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "api-keys.txt"
    path.write_text(f"# rotated 2026-01\n{hash_key(KEY)}  dashboard\n\n{hash_key(OTHER_KEY)}   # no name\n")
    return path


@pytest.fixture(scope="module")
def keyed(make_client, keys_file):
    with make_client(api_keys=keys_file) as client:
        yield client


def call(client, method: str, path: str, headers=None, photo=None):
    body = {"images": [photo.b64] if photo else [], **({"method": "gradient"} if path.endswith("explain") else {})}
    return client.request(method, path, headers=headers or {}, json=body if method == "POST" else None)


@pytest.mark.parametrize("method, path", V1)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"}],
    ids=["none", "wrong-bearer", "wrong-header", "basic-scheme"],
)
def test_v1_routes_refuse_requests_without_a_configured_key(keyed, method, path, headers):
    response = call(keyed, method, path, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["code"] == "unauthorized" and body["error"]["field"] is None
    assert set(body["error"]) == {"code", "message", "field"}


@pytest.mark.parametrize("method, path", V1)
@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {OTHER_KEY}"}, {"X-API-Key": KEY}],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_a_configured_key_in_either_header_lets_requests_through(keyed, photos, method, path, headers):
    response = call(keyed, method, path, headers, photos["chelsea.jpg"])
    assert response.status_code == 200, response.text


def test_probes_metrics_and_docs_stay_open_by_default(keyed):
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path


def test_metrics_can_be_put_behind_the_keys(make_client, keys_file):
    with make_client(api_keys=keys_file, metrics_auth=True) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_docs_can_be_put_behind_the_keys_or_off(make_client, keys_file):
    with make_client(api_keys=keys_file, docs="auth") as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200, path
        document = client.get("/openapi.json", headers={"X-API-Key": KEY}).json()
        assert "/openapi.json" not in document["paths"] and "/v1/models" in document["paths"]
    with make_client(docs="off") as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path


def test_the_key_name_reaches_logs_and_metrics_but_the_key_never_does(keyed, json_log):
    response = keyed.get("/v1/models/nope", headers={"X-API-Key": KEY, "X-Request-ID": "named-request"})
    assert response.status_code == 404
    keyed.get("/v1/models", headers={"X-API-Key": "not-a-key-1234", "X-Request-ID": "refused-request"})
    lines = json_log()
    refused = [line for line in lines if line["request_id"] == "refused-request"]
    assert refused and all(line["key_name"] == "-" for line in refused)
    assert "not-a-key-1234" not in str(lines) and KEY not in str(lines)

    scrape = keyed.get("/metrics").text
    samples = [s for f in text_string_to_metric_families(scrape) for s in f.samples]
    keys = {s.labels["key"] for s in samples if s.name == "saliency_requests_total"}
    assert keys <= {"", "dashboard", f"key-{hash_key(OTHER_KEY)[:8]}"} and "dashboard" in keys
    assert any(
        s.labels == {"endpoint": "/v1/models/{name}", "model": "", "method": "", "key": "dashboard", "status": "404"}
        for s in samples
        if s.name == "saliency_requests_total"
    )
    assert KEY not in scrape and hash_key(KEY) not in scrape


def test_key_names_go_into_the_request_log_lines(make_client, keys_file, json_log, photos, monkeypatch):

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(core, "predict", broken)
    with make_client(api_keys=keys_file) as client:
        response = client.post(
            "/v1/models/shapes18/predict",
            json={"images": [photos["chelsea.jpg"].b64]},
            headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "keyed-500"},
        )
    assert response.status_code == 500
    (line,) = [line for line in json_log() if line["request_id"] == "keyed-500"]
    assert line["key_name"] == "dashboard" and line["level"] == "ERROR"


def test_without_keys_the_api_is_open(client):
    assert client.get("/v1/models").status_code == 200


def test_a_bad_keys_file_fails_at_app_construction_in_one_line(settings, tmp_path):
    from service.keys import KeysError

    path = tmp_path / "keys.txt"
    path.write_text(f"{hash_key(KEY)} ok\nsk-this-is-a-key-not-a-hash\n")
    with pytest.raises(KeysError) as raised:
        create_app(settings.model_copy(update={"api_keys": path}))
    assert "\n" not in str(raised.value) and f"{path}:2" in str(raised.value)
    assert "sk-this-is-a-key" not in str(raised.value)


def test_openapi_declares_both_schemes_on_the_keyed_routes(client):
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            v2 = path == "/v2" or path.startswith("/v2/")
            keyed = path.startswith("/v1/") or (v2 and not path.startswith("/v2/health/"))
            assert ("security" in operation) == keyed, path
            if keyed:
                assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
                assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": f"#/components/schemas/{'ErrorV2' if v2 else 'ErrorBody'}"
                }
