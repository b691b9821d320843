"""explain with `Accept: text/event-stream`: progress events, then the plain response's body as `result`."""

from __future__ import annotations

import json

STREAM = {"accept": "text/event-stream"}


def parse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def without_timing(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "timing_ms"}


def test_the_result_event_is_the_plain_response(make_client, photos):
    body = {
        "images": [photos["chelsea.jpg"].b64],
        "method": {"name": "integrated_gradients", "steps": 120},
        "output": {"heatmap": True},
    }
    with make_client(chunk_size=4) as client:
        streamed = client.post("/v1/models/shapes18/explain", json=body, headers=STREAM)
        plain = client.post("/v1/models/shapes18/explain", json=body)
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    events = parse_events(streamed.text)
    names = [name for name, _ in events]
    assert names[-1] == "result" and set(names[:-1]) == {"progress"} and len(names) >= 2
    progress = [data for name, data in events if name == "progress"]
    assert all(p["total"] == 122 for p in progress)  # 120 steps + the input's and the baseline's forward
    dones = [p["done"] for p in progress]
    assert dones == sorted(dones) and 0 < dones[0] <= dones[-1] <= 122
    assert without_timing(events[-1][1]) == without_timing(plain.json())


def test_errors_before_any_progress_are_plain_json_errors(client, photos):
    body = {"images": [photos["chelsea.jpg"].b64], "method": {"name": "gradcam", "layer": "nope"}}
    response = client.post("/v1/models/shapes18/explain", json=body, headers=STREAM)
    assert response.status_code == 422 and response.json()["error"]["field"] == "method.layer"


def test_a_deadline_during_the_stream_arrives_as_an_error_event(make_client, photos):
    body = {
        "images": [photos["chelsea.jpg"].b64],
        "method": {"name": "integrated_gradients", "steps": 1000},
        "timeout_ms": 700,
    }
    with make_client(chunk_size=4, max_passes_per_image=2000) as client:
        response = client.post("/v1/models/shapes18/explain", json=body, headers=STREAM)
    events = parse_events(response.text)
    assert events[0][0] == "progress" and events[-1][0] == "error"
    assert events[-1][1]["error"]["code"] == "deadline_exceeded"
