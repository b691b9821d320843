"""X-Request-ID: taken from the client when it is sane, minted otherwise, on every response (500s too), and in
every log line of its request; the 500's message quotes it."""

from __future__ import annotations

import re

import pytest

from service import core

MINTED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def broken_predict(monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug in the service")

    monkeypatch.setattr(core, "predict", broken)


@pytest.mark.parametrize(
    "method, path, status",
    [("GET", "/healthz", 200), ("GET", "/v1/models", 200), ("GET", "/v1/models/nope", 404), ("GET", "/nowhere", 404)],
)
def test_every_response_carries_a_minted_id(client, method, path, status):
    first, second = client.request(method, path), client.request(method, path)
    assert first.status_code == status
    assert MINTED.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("sent", ["3f2a9c1e-77b1-4c1e-9d0f-0a1b2c3d4e5f", "nginx-8c1f", "req_42.retry:1"])
def test_a_sane_client_id_is_echoed(client, sent):
    assert client.get("/v1/models", headers={"X-Request-ID": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["x" * 65, "a b", "<script>", "id;rm -rf", "ünïcode"])
def test_a_long_or_odd_client_id_is_replaced_not_echoed(client, sent):
    returned = client.get("/v1/models", headers={"X-Request-ID": sent.encode()})
    assert MINTED.fullmatch(returned.headers["x-request-id"])


def test_a_500_quotes_the_id_of_its_header_in_the_body_and_the_log(client, photos, broken_predict, json_log):
    response = client.post(
        "/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64]}, headers={"X-Request-ID": "bug-1"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error (request id bug-1)", "field": None}
    }
    (line,) = [line for line in json_log() if line["level"] == "ERROR"]
    assert line["request_id"] == "bug-1" and "RuntimeError: a bug in the service" in line["exc_info"]
    assert "a bug" not in response.text  # no internals in the answer


def test_a_500_without_a_client_id_mints_one_and_quotes_it(client, photos, broken_predict):
    response = client.post("/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64]})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert MINTED.fullmatch(request_id) and request_id in response.json()["error"]["message"]


def test_a_500_is_counted(client, photos, broken_predict):
    from prometheus_client.parser import text_string_to_metric_families

    def errors() -> float:
        for family in text_string_to_metric_families(client.get("/metrics").text):
            for s in family.samples:
                if s.name == "saliency_errors_total" and s.labels["code"] == "internal":
                    return s.value
        return 0.0

    before = errors()
    client.post("/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64]})
    assert errors() == before + 1
