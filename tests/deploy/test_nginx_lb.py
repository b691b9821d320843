"""Two uvicorn replicas behind Debian's nginx, configured by docker/nginx/nginx.conf's own directives (loopback
ports in place of the replicas' names): least-connections balancing, right answers, retries on the other
replica when one is killed in the middle of requests (POSTs: needs `non_idempotent`), and a graceful stop.

The tests share the replicas and run in file order: the last two kill one replica and stop the other."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port

from service.settings import Settings

STARTUP_TIMEOUT = 60.0
DRAIN_SECONDS = 2.0

TOML = """\
[[models]]
name = "tiny"
architecture = "torchvision:resnet18"
weights = "resnet18.pt"
num_classes = 4
input_size = [64, 64]
"""


def wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[:4]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def model_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet18 with saved random weights, so that both replicas compute the same maps."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = torchvision.models.get_model("resnet18", weights=None, num_classes=4)
    torch.save(model.state_dict(), folder / "resnet18.pt")
    (folder / "models.toml").write_text(TOML)
    return folder / "models.toml"


@pytest.fixture(scope="module")
def replicas(model_config: Path, nginx_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list]:
    """Two `service.cli serve` processes on loopback ports: [(address, process), ...]."""
    logs = tmp_path_factory.mktemp("replicas")
    # One torch thread each: two replicas share this machine's cores with nginx and the client.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    env.update(SALIENCY_DEVICE="cpu", OMP_NUM_THREADS="1")
    started = []
    try:
        # The second replica drains for DRAIN_SECONDS on SIGTERM (the last test stops it).
        for i, drain in ((1, 0), (2, DRAIN_SECONDS)):
            port, log = free_port(), logs / f"replica-{i}.log"
            command = [sys.executable, "-m", "service.cli", "serve", "--config", str(model_config)]
            command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
            with log.open("w") as out:
                proc = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, env={**env, "SALIENCY_DRAIN_SECONDS": str(drain)}
                )
            started.append((f"127.0.0.1:{port}", proc, log))
        for address, proc, log in started:
            wait_for(f"http://{address}/readyz", proc, log)
        yield [(address, proc) for address, proc, _ in started]
    finally:
        for _, proc, _ in started:
            stop(proc)


@pytest.fixture(scope="module")
def balancer(replicas: list, nginx_binary: str, smoke_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """nginx in the foreground with its config, logs, pid and temp files in a temporary folder: its base URL."""
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(smoke_client.derive_nginx_conf([a for a, _ in replicas], f"127.0.0.1:{port}", workdir))
    args = [nginx_binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
    tested = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert tested.returncode == 0, tested.stderr
    proc = subprocess.Popen([*args, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nginx did not start: {proc.stderr.read().decode() if proc.poll() else 'timeout'}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        proc.stderr.close()
        print((workdir / "access.log").read_text() if (workdir / "access.log").exists() else "no access log")


def test_both_replicas_serve_and_every_answer_is_right(balancer: str, replicas: list, smoke_client) -> None:
    report = smoke_client.run_checks(balancer, requests=20, kill_command=None)
    assert report["replicas"] == sorted(a for a, _ in replicas)
    assert report["spread"] < 1e-4


def test_body_over_the_service_limit_is_refused_by_nginx(balancer: str) -> None:
    # The declared length is enough: nginx answers before reading the body, without asking a replica.
    connection = http.client.HTTPConnection(*balancer.removeprefix("http://").split(":"), timeout=10)
    try:
        connection.putrequest("POST", "/v1/models/tiny/explain")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(Settings.model_fields["max_body_bytes"].default + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert not response.getheader("X-Upstream")
    finally:
        connection.close()


def test_progress_events_pass_through_nginx_as_they_are_sent(balancer: str, smoke_client) -> None:
    """explain with Accept: text/event-stream: nginx must not hold the events back until the answer is done."""
    body = {
        "images": [base64.b64encode(smoke_client.png(64, 64)).decode()],
        "method": {"name": "integrated_gradients", "steps": 300},
    }
    started = time.monotonic()
    arrivals, data = [], {}
    with post(balancer, "/v1/models/tiny/explain", body, {"Accept": "text/event-stream"}) as response:
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
        while line := response.readline():
            if line.startswith(b"event: "):
                name = line[7:].strip().decode()
                arrivals.append((name, time.monotonic() - started))
            elif line.startswith(b"data: "):
                data[name] = json.loads(line[6:])
    names = [name for name, _ in arrivals]
    assert names[-1] == "result" and names.count("progress") >= 2, names
    first_progress = next(t for name, t in arrivals if name == "progress")
    done = arrivals[-1][1]
    assert done - first_progress > 0.3 * done, f"events arrived in one burst: {arrivals}"
    with post(balancer, "/v1/models/tiny/explain", body) as response:
        plain = json.loads(response.read())
    assert data["result"].keys() == plain.keys() and data["result"]["results"][0].keys() == plain["results"][0].keys()


def test_a_client_request_id_passes_through_nginx(balancer: str, smoke_client) -> None:
    body = {"images": [base64.b64encode(smoke_client.png(64, 64)).decode()]}
    with post(balancer, "/v1/models/tiny/predict", body, {"X-Request-ID": "client-id.42"}) as response:
        assert response.status == 200 and response.getheader("X-Request-ID") == "client-id.42"
    with post(balancer, "/v1/models/tiny/predict", body) as response:  # without one, one is made up
        assert response.status == 200 and response.getheader("X-Request-ID") not in (None, "", "client-id.42")


@contextlib.contextmanager
def post(base: str, path: str, body: dict, headers: dict[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
    """A JSON POST on its own connection: the answer, its body still to read as it arrives."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
        yield connection.getresponse()
    finally:
        connection.close()


def test_requests_survive_a_replica_killed_mid_request(balancer: str, replicas: list, smoke_client) -> None:
    (victim, victim_proc), (survivor, _) = replicas
    report = smoke_client.run_checks(
        balancer, requests=10, kill_command=f"kill -KILL {victim_proc.pid}", slow_steps=64, kill_after=0.2
    )
    assert victim_proc.wait(timeout=10) == -signal.SIGKILL
    assert report["in_flight"] > 0, "the kill came after the slow requests had finished: raise slow_steps"
    assert report["retried"] > 0
    assert report["survivors"] == [survivor]


def status_of(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return type(exc).__name__


def test_sigterm_drains_then_exits_cleanly(replicas: list, smoke_client) -> None:
    """On SIGTERM a replica keeps serving with /readyz at 503 for SALIENCY_DRAIN_SECONDS, then exits 0."""
    address, proc = replicas[1]
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert status_of(f"http://{address}/readyz") == 503
    status, body, _ = smoke_client.explain(f"http://{address}", "tiny", smoke_client.png(64, 64))
    smoke_client.check_explanation(status, body, "tiny", (64, 64))
    assert proc.wait(timeout=DRAIN_SECONDS + 15) == 0
