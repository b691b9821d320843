"""CORS: off by default; with `cors_origins`, the configured origins may call the API from a browser."""

from __future__ import annotations

import pytest

from service import core

ORIGIN = "https://dash.example.com"


@pytest.fixture(scope="module")
def cors_client(make_client):
    with make_client(cors_origins=[ORIGIN]) as client:
        yield client


def preflight(client, origin: str):
    return client.options(
        "/v1/models/shapes18/explain",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_preflight_from_a_configured_origin_is_allowed(cors_client):
    response = preflight(cors_client, ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


def test_preflight_from_another_origin_is_refused(cors_client):
    response = preflight(cors_client, "https://evil.example.com")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_responses_carry_the_cors_headers(cors_client, photos):
    response = cors_client.get("/v1/models", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    response = cors_client.post(
        "/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64]}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


def test_error_responses_carry_them_too(cors_client):
    response = cors_client.get("/v1/models/nope", headers={"Origin": ORIGIN})
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_other_origins_get_no_cors_headers(cors_client):
    response = cors_client.get("/v1/models", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(client):
    response = client.get("/v1/models", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert preflight(client, ORIGIN).status_code == 405


def test_a_500_carries_the_cors_headers_and_the_request_id(cors_client, photos, monkeypatch):
    # Starlette answers unhandled errors outside every user middleware, CORS included; the service must not.

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(core, "predict", broken)
    response = cors_client.post(
        "/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64]}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == ORIGIN
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "error": {"code": "internal", "message": f"internal error (request id {request_id})", "field": None}
    }
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after"} <= exposed
