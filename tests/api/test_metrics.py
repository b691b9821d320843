"""GET /metrics: Prometheus text with per-endpoint, per-model, per-method counters and latencies."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

EXPLAIN = "/v1/models/{name}/explain"


def sample(client, name: str, **labels: str) -> float:
    """The value of one sample in the current scrape (0 when absent)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "saliency_requests",
        "saliency_request_seconds",
        "saliency_errors",
        "saliency_images_explained",
        "saliency_model_load_seconds",
        "saliency_models_loaded",
    } <= names


def test_an_explain_request_is_counted_with_its_model_and_method(client, photos):
    labels = {"endpoint": EXPLAIN, "model": "shapes18", "method": "gradcam"}
    before = sample(client, "saliency_requests_total", status="200", **labels)
    latency_before = sample(client, "saliency_request_seconds_count", **labels)
    images_before = sample(client, "saliency_images_explained_total", model="shapes18", method="gradcam")
    image = photos["chelsea.jpg"].b64
    response = client.post("/v1/models/shapes18/explain", json={"images": [image, image], "method": "gradcam"})
    assert response.status_code == 200
    assert sample(client, "saliency_requests_total", status="200", **labels) == before + 1
    assert sample(client, "saliency_request_seconds_count", **labels) == latency_before + 1
    assert sample(client, "saliency_images_explained_total", model="shapes18", method="gradcam") == images_before + 2


def test_errors_are_counted_by_code_and_client_names_stay_out_of_labels(client, photos):
    image = photos["chelsea.jpg"].b64
    labels = {"endpoint": EXPLAIN, "model": "unknown", "method": "gradient"}
    before = sample(client, "saliency_errors_total", code="unknown_model", **labels)
    assert client.post("/v1/models/made-up/explain", json={"images": [image]}).status_code == 404
    assert sample(client, "saliency_errors_total", code="unknown_model", **labels) == before + 1

    labels = {"endpoint": EXPLAIN, "model": "shapes18", "method": "unknown"}
    before = sample(client, "saliency_requests_total", status="404", **labels)
    response = client.post("/v1/models/shapes18/explain", json={"images": [image], "method": "made-up"})
    assert response.status_code == 404
    assert sample(client, "saliency_requests_total", status="404", **labels) == before + 1
    assert "made-up" not in client.get("/metrics").text


def test_model_gauges(client):
    assert sample(client, "saliency_models_loaded") >= 1
    assert sample(client, "saliency_model_load_seconds", model="shapes18") > 0
    assert sample(client, "saliency_model_load_seconds", model="broken") == 0  # never loaded


def test_scrapes_are_not_counted(client):
    client.get("/metrics")
    assert sample(client, "saliency_requests_total", endpoint="/metrics") == 0


def test_process_and_platform_metrics_are_in_the_apps_registry(client):
    names = {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "python_info"} <= names
    assert "python_gc_collections" in names
