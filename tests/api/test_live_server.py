"""The real server: `python -m service.cli serve` over TCP, then SIGTERM with a drain period; a client
that leaves mid-request; the JSON log; a stalled upload."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from servers import serving

from service.keys import hash_key

STARTUP_SECONDS = 120  # importing torch on a busy 2-core machine is slow
# The demo CNN (random weights) loads in a fraction of resnet18's time.
TINY = {
    "name": "tiny",
    "architecture": "python:service.demo.net:shapes_cnn",
    "labels": "labels.txt",
    "num_classes": 4,
    "input_size": [64, 64],
}


@pytest.fixture
def launch(model_dir, write_config_file, tmp_path):
    """launch(**env) -> (process, base URL, log path) of a server with a 1 s drain, once /healthz answers;
    killed if a test leaves it running."""
    config = write_config_file(model_dir, "live.toml", TINY)
    args, env = ["--config", str(config)], {**os.environ, "SALIENCY_DRAIN_SECONDS": "1", "SALIENCY_DEVICE": "cpu"}
    logs = (tmp_path / f"server-{i}.log" for i in itertools.count())
    with contextlib.ExitStack() as running:

        def start(**extra_env: str):
            log = next(logs)
            served = serving(
                args, {**env, **extra_env}, log, ready_path="/healthz", startup_s=STARTUP_SECONDS, stop_s=None
            )
            return (*running.enter_context(served), log)

        yield start


@pytest.fixture
def server(launch):
    return launch()


def test_serves_over_tcp_and_drains_on_sigterm(server, photos):
    process, base, log = server
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        assert [m["name"] for m in http.get("/v1/models").json()] == ["tiny"]
        response = http.post(
            "/v1/models/tiny/explain", json={"images": [photos["chelsea.jpg"].b64], "method": "gradcam"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["saliency"]["shape"] == [64, 64]

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        # During the drain: not ready (so the load balancer stops sending), but alive and still serving.
        readiness = http.get("/readyz")
        assert readiness.status_code == 503 and readiness.json()["status"] == "draining"
        assert http.get("/healthz").status_code == 200
        predict = http.post("/v1/models/tiny/predict", json={"images": [photos["chelsea.jpg"].b64]})
        assert predict.status_code == 200
        assert time.monotonic() - started < 1.0, "the drain checks ran too late to be inside the drain"

    assert process.wait(timeout=30) == 0, log.read_text()
    assert time.monotonic() - started >= 1.0  # it waited out the drain
    assert "draining" in log.read_text()


KEY = "live-test-key"
EXPLAIN = "/v1/models/{name}/explain"


def requests_total(http: httpx.Client, **labels: str) -> float:
    return sample(http, "saliency_requests_total", **labels)


def sample(http: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_a_client_that_leaves_mid_request_is_a_499_and_one_info_line(launch, photos):
    process, base, log = launch(SALIENCY_LOG_FORMAT="json", SALIENCY_API_KEY_HASHES=f"{hash_key(KEY)}:live")
    # Slow on purpose (16 images x 1000 steps on one CPU thread, half a minute on a laptop): the client is
    # gone long before the end.
    body = json.dumps(
        {"images": [photos["chelsea.jpg"].b64] * 16, "method": {"name": "integrated_gradients", "steps": 1000}}
    ).encode()
    head = (
        "POST /v1/models/tiny/explain HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-API-Key: {KEY}\r\nX-Request-ID: leaving-client\r\n\r\n"
    )
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head.encode() + body)
        time.sleep(0.5)  # the body is read and the work under way
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + 30
        while requests_total(http, endpoint=EXPLAIN, status="499") == 0:
            assert time.monotonic() < deadline, f"no 499 counted:\n{log.read_text()}"
            time.sleep(0.2)
        assert requests_total(http, endpoint=EXPLAIN, model="tiny", key="live", status="499") == 1
        assert requests_total(http, endpoint=EXPLAIN, status="200") == 0  # it did not finish first
        # Its remaining passes were dropped: the device stops within one pass.
        passes = sample(http, "saliency_chunk_rows_count")
        time.sleep(1.0)
        assert sample(http, "saliency_chunk_rows_count") - passes <= 1
        assert sample(http, "saliency_cancellations_total", model="tiny") == 1
        assert sample(http, "saliency_queue_rows") == 0
        models = http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "staying-client"})
        assert models.status_code == 200 and models.headers["x-request-id"] == "staying-client"

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # one format: every line is JSON
    assert "Traceback" not in text and not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    (left,) = [line for line in lines if "disconnect" in line["message"]]
    assert left["level"] == "INFO" and left["request_id"] == "leaving-client" and left["key_name"] == "live"
    (access,) = [line for line in lines if line["logger"] == "uvicorn.access" and line.get("path") == "/v1/models"]
    assert access["request_id"] == "staying-client" and access["key_name"] == "live" and access["status"] == 200
    assert KEY not in text


def answer(connection: socket.socket) -> tuple[bytes, dict]:
    """The status line and the JSON body of the one answer on `connection` (a 408 closes it)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):  # closing on a client still sending may reset
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


def trickle(connection: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # until the server closes the connection
        for byte in data:
            time.sleep(0.25)
            connection.sendall(bytes([byte]))


def test_a_stalled_upload_gets_a_408_within_the_body_timeout(launch, photos):
    process, base, log = launch(SALIENCY_BODY_TIMEOUT_S="1")
    good = {"images": [photos["chelsea.jpg"].b64]}
    body = json.dumps(good).encode()
    head = (
        "POST /v1/models/tiny/predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        stalled.sendall(head + body[: len(body) // 2])  # then nothing more
        started = time.monotonic()
        status, error = answer(stalled)
    assert status == b"HTTP/1.1 408 Request Timeout" and error["error"]["code"] == "body_timeout", error
    assert 0.9 < time.monotonic() - started < 5

    # A byte every 0.25 s, each in time: the limit is on the whole body, not on each read.
    with socket.create_connection((host, int(port)), timeout=10) as trickling:
        trickling.sendall(head + body[: len(body) // 2])
        started = time.monotonic()
        sender = threading.Thread(target=trickle, args=(trickling, body[len(body) // 2 :][:40]))
        sender.start()
        status, error = answer(trickling)
        sender.join()
    assert status == b"HTTP/1.1 408 Request Timeout" and 0.9 < time.monotonic() - started < 5

    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/v1/models/tiny/predict", json=good).status_code == 200
    assert "Traceback" not in log.read_text()


def test_the_event_loop_answers_while_large_maps_are_encoded(launch):
    """Colormaps, PNG compression and base64 of 9 MP overlays run on the codec threads, so /healthz keeps
    answering at once; on the event loop each request would hold every connection for its whole encode."""
    process, base, log = launch(SALIENCY_CODEC_THREADS="2")
    side = 3000
    ramp = np.broadcast_to(np.linspace(0, 255, side, dtype=np.float32), (side, side))
    pixels = np.stack([ramp, ramp.T, np.full_like(ramp, 128)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    body = {
        "images": [base64.b64encode(buffer.getvalue()).decode()],
        "method": "gradient",
        "output": {"size": "original", "heatmap": True, "overlay": True},
    }
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not done.is_set():
                started = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    def explain() -> float:
        with httpx.Client(base_url=base, timeout=120) as http:
            response = http.post(EXPLAIN.format(name="tiny"), json=body)
            assert response.status_code == 200, response.text
            return response.json()["timing_ms"]["encode"] / 1000

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(4) as clients:
            encode_seconds = list(clients.map(lambda _: explain(), range(4)))
    finally:
        done.set()
        poller.join()
    assert sum(encode_seconds) > 3.0, encode_seconds  # the encodes were long enough to matter
    assert len(latencies) > 10
    # On the loop, /healthz would wait for whole encodes (measured 2.3 s against encodes of 1.0 s each); on the
    # codec threads it waits only for the GIL between them (0.15-0.25 s, 0.6 s on a machine under load).
    assert max(latencies) < 0.5 * min(encode_seconds), (max(latencies), encode_seconds)
