"""The real server: `python -m service.cli serve` over TCP, then SIGTERM with a drain period."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

STARTUP_SECONDS = 120  # importing torch on a busy 2-core machine is slow
# The demo CNN (random weights) loads in a fraction of resnet18's time.
TINY = {
    "name": "tiny",
    "architecture": "python:service.demo.net:shapes_cnn",
    "labels": "labels.txt",
    "num_classes": 4,
    "input_size": [64, 64],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(model_dir, write_config_file, tmp_path):
    """(process, base URL, log path) of a server with a 1 s drain; killed if a test leaves it running."""
    config = write_config_file(model_dir, "live.toml", TINY)
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "SALIENCY_DRAIN_SECONDS": "1", "SALIENCY_DEVICE": "cpu"}
    command = [sys.executable, "-m", "service.cli", "serve", "--config", str(config), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"server exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"server did not start:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield process, base, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


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
