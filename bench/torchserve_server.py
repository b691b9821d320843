"""A running TorchServe for bench/torchserve.py: the stock `image_classifier` handler on a state_dict.

Everything it writes (the model archive, the extracted model, logs, its pid file and worker sockets) goes into
the folder given, and the process group it starts is stopped however the benchmark ends.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .common import MODEL, free_port

# TorchServe's own resnet18 example (examples/image_classifier/resnet_18/model.py): the stock handler builds
# the one class this file defines and loads the state_dict into it.
MODEL_FILE = """from torchvision.models.resnet import BasicBlock, ResNet


class ResNet18(ResNet):
    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2])
"""


def tool(name: str) -> str | None:
    """The venv's own console script first (the one pip installed with the extra), then PATH."""
    here = Path(sys.executable).with_name(name)
    return str(here) if here.is_file() else shutil.which(name)


def java() -> str | None:
    home = os.environ.get("JAVA_HOME")  # what TorchServe's launcher runs
    return f"{home}/bin/java" if home and Path(f"{home}/bin/java").is_file() else shutil.which("java")


def missing() -> str | None:
    """Why TorchServe cannot run here, or None."""
    # In this interpreter too: a torchserve on PATH from another environment is not this one's.
    installed = importlib.util.find_spec("ts") is not None and importlib.util.find_spec("model_archiver") is not None
    gone = [name for name in ("torchserve", "torch-model-archiver") if tool(name) is None or not installed]
    if gone:
        return f"{' and '.join(gone)} not installed (pip install -e '.[bench]')"
    if java() is None:
        return "java not found (TorchServe's frontend needs Java 17; set JAVA_HOME or put java on PATH)"
    return None


def archive(home: Path, weights: Path) -> Path:
    """torch-model-archiver with the stock handler; returns the model store."""
    store = home / "store"
    store.mkdir(parents=True)
    (home / "model.py").write_text(MODEL_FILE)
    command = [str(tool("torch-model-archiver")), "--model-name", MODEL, "--version", "1.0", "--model-file"]
    command += [str(home / "model.py"), "--serialized-file", str(weights), "--handler", "image_classifier"]
    subprocess.run([*command, "--export-path", str(store)], check=True, capture_output=True, cwd=home)
    return store


def properties(home: Path, workers: int) -> tuple[Path, str, str]:
    """config.properties on free ports; returns it with the inference and management URLs."""
    inference, management = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    lines = [
        f"inference_address={inference}",
        f"management_address={management}",
        f"metrics_address=http://127.0.0.1:{free_port()}",
        # gRPC listens on 7070/7071 whatever the HTTP addresses; free ports avoid a clash with another TorchServe.
        f"grpc_inference_port={free_port()}",
        f"grpc_management_port={free_port()}",
        "disable_token_authorization=true",
        f"default_workers_per_model={workers}",
        # Its system metrics spawn a Python process every minute; that is host monitoring, not serving.
        "disable_system_metrics=true",
    ]
    path = home / "config.properties"
    path.write_text("\n".join(lines) + "\n")
    return path, inference, management


def wait_ready(proc: subprocess.Popen, management: str, log: Path, seconds: float = 180) -> None:
    """Until a worker of the model is READY (/ping says Healthy before the worker has loaded the model)."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"TorchServe did not start; its log, {log}:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{management}/models/{MODEL}", timeout=5)
            if response.status_code == 200 and any(w["status"] == "READY" for w in response.json()[0]["workers"]):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)


@contextmanager
def torchserve(folder: Path, weights: Path, workers: int) -> Iterator[str]:
    """TorchServe serving `weights` as MODEL with the stock image classifier; yields the inference URL."""
    home = folder / "torchserve"
    store = archive(home, weights)
    config, inference, management = properties(home, workers)
    # TEMP: the Java side's temp folder (worker sockets, the extracted model); TMPDIR: the launcher's pid file,
    # so `--stop` finds this server and no other.
    env = {**os.environ, "TEMP": str(home), "TMPDIR": str(home), "LOG_LOCATION": str(home / "logs")}
    env["METRICS_LOCATION"] = str(home / "logs")
    launcher = str(tool("torchserve"))
    command = [launcher, "--start", "--foreground", "--ncs", "--disable-token-auth", "--model-store", str(store)]
    log = home / "torchserve.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--ts-config", str(config), "--models", f"{MODEL}={MODEL}.mar"],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Java and the Python workers, stopped together below
        )
    try:
        wait_ready(proc, management, log)
        yield inference
    finally:
        try:
            subprocess.run([launcher, "--stop", "--foreground"], cwd=home, env=env, capture_output=True, timeout=90)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group outlived --stop
            except ProcessLookupError:
                pass
            proc.wait()
