"""Deadlines: a request's timeout_ms (capped by SALIENCY_REQUEST_TIMEOUT_S) gives 504 and frees the device."""

from __future__ import annotations

import time

HEAVY = {"name": "integrated_gradients", "steps": 1000}  # tens of seconds on this CPU at chunk_size 4


def chunks_run(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("saliency_chunk_rows_count"):
            return float(line.split()[-1])
    return 0.0


def test_timeout_ms_gives_504_and_the_device_is_free_within_a_chunk(make_client, photos):
    with make_client(chunk_size=4, max_passes_per_image=2000) as client:
        started = time.perf_counter()
        body = {"images": [photos["chelsea.jpg"].b64], "method": HEAVY, "timeout_ms": 300}
        response = client.post("/v1/models/shapes18/explain", json=body)
        elapsed = time.perf_counter() - started
        assert response.status_code == 504, response.text
        error = response.json()["error"]
        assert error["code"] == "deadline_exceeded" and "0.3 s" in error["message"]
        assert elapsed < 5
        at_answer = chunks_run(client)
        time.sleep(1.0)
        assert chunks_run(client) - at_answer <= 1, "the abandoned request's rows must be dropped"
        metrics = client.get("/metrics").text
        assert 'saliency_deadlines_exceeded_total{model="shapes18"} 1.0' in metrics
        assert 'saliency_queue_rows{device="cpu"} 0.0' in metrics
        # The device serves the next request at once.
        quick = client.post(
            "/v1/models/shapes18/explain", json={"images": [photos["chelsea.jpg"].b64], "method": "gradient"}
        )
        assert quick.status_code == 200


def test_the_server_maximum_caps_the_request_timeout(make_client, photos):
    with make_client(chunk_size=4, max_passes_per_image=2000, request_timeout_s=0.3) as client:
        body = {"images": [photos["chelsea.jpg"].b64], "method": HEAVY, "timeout_ms": 600_000}
        response = client.post("/v1/models/shapes18/explain", json=body)
        assert response.status_code == 504 and response.json()["error"]["code"] == "deadline_exceeded"


def test_predict_has_a_deadline_too(client, photos):
    response = client.post(
        "/v1/models/shapes18/predict", json={"images": [photos["chelsea.jpg"].b64], "timeout_ms": 60_000}
    )
    assert response.status_code == 200


def test_timeout_ms_must_be_a_positive_integer(client, photos):
    for bad in (0, -5, "100", 1.5, True):
        body = {"images": [photos["chelsea.jpg"].b64], "method": "gradient", "timeout_ms": bad}
        response = client.post("/v1/models/shapes18/explain", json=body)
        assert response.status_code == 422, (bad, response.text)
