"""Real `saliency-service serve` processes for the tests that talk to one over TCP.

pyproject.toml puts tests/ on sys.path (`pythonpath`), so every test folder imports this as `servers`."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port that is free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    ready_path: str = "/readyz",
    startup_s: float,
    stop_s: float | None = 30.0,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m service.cli serve *args --port PORT` on a free loopback port, its output in `log`: yields
    (the process, its base URL) once `ready_path` answers 200. Afterwards the process gets SIGTERM and `stop_s`
    seconds to exit before SIGKILL; None: SIGKILL at once."""
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve", *args, "--port", str(port)]
    # One torch thread: the tests share a 2-core machine with the server.
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**env, "OMP_NUM_THREADS": "1"}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while not answers(url + ready_path):
            assert process.poll() is None, f"the server exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{ready_path} not ready after {startup_s} s:\n{log.read_text()}"
            time.sleep(0.2)
        yield process, url
    finally:
        stop(process, stop_s)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def stop(process: subprocess.Popen, stop_s: float | None) -> None:
    if stop_s is not None:
        process.terminate()
        try:
            process.wait(timeout=stop_s)
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.wait()
