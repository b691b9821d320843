"""What every benchmark shares: the plan (sizes), result rows and their table, models, inputs, timers, a server."""

from __future__ import annotations

import io
import logging
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn
from PIL import Image
from torch import Tensor, nn

from service.main import create_app
from service.models import LoadedModel, ModelPool, load_config

try:
    from service.codecs.image.transforms import to_input
except ImportError:  # older checkouts, whose servers bench/serve.py also runs with this file
    from service.models.transforms import to_input
from service.settings import Settings

MODEL = "bench"  # the model's name in every config the benchmarks write
logging.getLogger("service.models.loader").setLevel(logging.ERROR)  # "serving random weights": intended here


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats; `quick` shrinks everything so the tests can run it in about 40 s."""

    device: str = "cpu"
    size: int = 224
    overhead_repeats: int = 21
    # Against Captum (bench/captum_compare.py): resnet18 at its own size, end to end and engine only.
    captum_size: int = 112
    light_repeats: int = 11  # gradient, Grad-CAM
    heavy_repeats: int = 5  # SmoothGrad, IG
    occlusion_repeats: int = 5
    clients: int = 16
    warm_cycles: int = 1  # batching: rounds of `clients` requests before timing starts
    timed_cycles: int = 3  # each of two runs per setting
    smoothgrad_samples: int = 25
    ig_steps: int = 50
    occlusion_window: int = 16
    occlusion_stride: int = 8
    memory_arch: str = "resnet50"
    memory_ig_steps: int = 200
    memory_smoothgrad_samples: int = 256
    # Scheduling (bench/scheduling.py): resnet18 at its own size, servers in their own processes.
    scheduling_size: int = 112
    hol_steps: int = 256  # the long Integrated Gradients request
    hol_probes: int = 8  # gradient requests spread over its run
    hol_repeats: int = 3
    alone_repeats: int = 5  # each cheap method alone, per server
    mixed_seconds: float = 75.0  # arrivals for this long; the run ends when the last answer is in
    mixed_rate: float = 1.5  # arrivals per second (Poisson)
    mixed_seed: int = 0
    multi_repeats: int = 9
    # What torch.compile buys (bench/compiling.py): resnet18, one server compiled and one eager.
    compile_size: int = 224
    compile_repeats: int = 15
    quick_pacing: bool = False  # bench/pacing.py: two targets instead of five
    # Against TorchServe (bench/torchserve.py): 224 px, as its stock handler crops; 8 concurrent clients.
    torchserve_predict_repeats: int = 21  # one client, per side
    torchserve_ig_repeats: int = 7
    torchserve_rounds: int = 3  # 8-client rounds per side, alternating

    @classmethod
    def quick(cls, device: str = "cpu", size: int = 64) -> Plan:
        return cls(
            device=device,
            size=size,
            overhead_repeats=3,
            captum_size=size,
            light_repeats=2,
            heavy_repeats=1,
            occlusion_repeats=1,
            warm_cycles=1,
            timed_cycles=1,
            smoothgrad_samples=4,
            ig_steps=4,
            memory_arch="resnet18",
            memory_ig_steps=8,
            memory_smoothgrad_samples=8,
            scheduling_size=64,
            hol_steps=16,
            hol_probes=3,
            hol_repeats=1,
            alone_repeats=2,
            mixed_seconds=3.0,
            mixed_rate=5.0,
            multi_repeats=2,
            compile_size=size,
            compile_repeats=2,
            quick_pacing=True,
            torchserve_predict_repeats=3,
            torchserve_ig_repeats=1,
            torchserve_rounds=1,
        )


@dataclass
class Row:
    """One line of the table. `target` is (">=" or "<=", value), or None for a figure shown for information."""

    name: str
    ours: float
    baseline: float
    unit: str
    target: tuple[str, float] | None
    note: str = ""
    valid: bool = True  # False when the two sides did not compute the same thing (the target cannot be met)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else math.nan

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, value = self.target
        return self.valid and (self.ratio <= value if op == "<=" else self.ratio >= value)


def fmt(value: float, unit: str) -> str:
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | ours | baseline | ratio | target | met? | notes |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = f"{r.target[0]} {r.target[1]:g}" if r.target else "info"
        met = {None: "-", True: "yes", False: "**no**"}[r.met]
        lines.append(
            f"| {r.name} | {fmt(r.ours, r.unit)} | {fmt(r.baseline, r.unit)} | {r.ratio:.3f} | {target} | {met} "
            f"| {r.note} |"
        )
    return "\n".join(lines)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # profile lines printed under the table

    def extend(self, other: Report) -> None:
        self.rows += other.rows
        self.notes += other.notes


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    parts = [
        f"{os.cpu_count()} CPUs ({cpu})",
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads",
        f"Python {platform.python_version()}",
    ]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name()}")
    else:
        parts.append("no GPU")
    if hasattr(os, "getloadavg"):
        parts.append("load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return "; ".join(parts)


# Models and inputs.


def write_config(folder: Path, arch: str, size: int) -> Path:
    """A models TOML serving torchvision `arch` with random weights (nothing downloads), 1000 classes."""
    path = folder / f"{arch}-{size}.toml"
    path.write_text(
        f'[[models]]\nname = "{MODEL}"\narchitecture = "torchvision:{arch}"\nnum_classes = 1000\n'
        f"input_size = [{size}, {size}]\n"
    )
    return path


def load_model(config: Path, device: str, **overrides: object) -> tuple[LoadedModel, Settings]:
    """The model as the server loads it: prepared (BatchNorm folded, ...) per the settings, with the pool's
    measure of a row's memory. Settings not given here come from SALIENCY_* variables, as for a server."""
    import importlib  # here, not above: bench/serve.py imports this file with older trees' `service`

    settings = Settings(config=config, device=device, **overrides)
    torch.manual_seed(0)
    options = None  # older trees do not prepare models; some had prepare_options in service.main
    for where in ("service.core.services", "service.main"):
        try:
            options = getattr(importlib.import_module(where), "prepare_options", None)
        except ImportError:
            continue
        if options is not None:
            break
    kwargs = {"prepare": options(settings)} if options is not None else {}
    loaded = ModelPool(load_config(config), device=device, **kwargs).get(MODEL)
    return loaded, settings


def user_model(loaded: LoadedModel) -> nn.Module:
    """The user's own model, the baseline of every raw figure: the unprepared eval model the pool loaded
    (`loaded.prepared.original`), not the folded or compiled one the service's passes run on (`loaded.module`).
    Older checkouts, which serve the model as loaded, have no `prepared`."""
    prepared = getattr(loaded, "prepared", None)
    return prepared.original if prepared is not None else loaded.module


def sample_image(size: int) -> Image.Image:
    """A smooth synthetic RGB picture: gradients and a disc (photographs are not needed for timing)."""
    yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
    disc = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2 < 0.08).astype(np.float64)
    rgb = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], axis=-1) * 0.7 + 0.3 * disc[..., None]
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), mode="RGB")


def jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """Lossless: the server decodes exactly these pixels."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def model_input(loaded: LoadedModel, n: int = 1) -> Tensor:
    """n copies of the sample image as the server preprocesses it, on the model's device."""
    x, _ = to_input(sample_image(loaded.spec.input_size[0]), loaded.spec)
    return x.expand(n, *x.shape).contiguous().to(loaded.device)


# Timing.


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device | str) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def fwd_bwd(model: nn.Module, x: Tensor) -> Tensor:
    """The raw work of a gradient explanation: forward, the top class's logit, gradient w.r.t. the input."""
    xr = x.detach().requires_grad_(True)
    logits = model(xr)
    target = logits.argmax(dim=1, keepdim=True)
    (grad,) = torch.autograd.grad(logits.gather(1, target).sum(), xr)
    return grad


# A real server: uvicorn serving create_app(settings) on a thread of this process. In-process on purpose: the
# raw baseline then runs on the very model the server serves, in the same process. Across processes the same
# fwd+bwd varies by up to 20% on this VM (memory layout, scheduling), more than the overhead being measured.
# The client's Python shares the GIL with the server, but a request's client work is counted in its latency
# anyway, and while the server works the client waits in recv with the GIL released.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    loaded: LoadedModel  # the server's own model, for the raw baseline
    settings: Settings


@contextmanager
def server(config: Path, device: str, **overrides: object) -> Iterator[Served]:
    """uvicorn + create_app(Settings(config, device, **overrides)) on a thread, ready once this yields.

    Settings not given here still come from SALIENCY_* variables, as they would for `saliency-service serve`.
    """
    settings = Settings(config=config, device=device, **overrides)
    app = create_app(settings)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name=f"bench-server-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while not uv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.05)
        yield Served(f"http://127.0.0.1:{port}", app.state.services.pool.get(MODEL), settings)
    finally:
        uv.should_exit = True
        thread.join(timeout=60)


class Servers:
    """Servers started on first use and kept until `close`, so benchmarks that need the same one share it."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._served: dict[tuple, Served] = {}

    def get(self, config: Path, device: str, **overrides: object) -> Served:
        key = (str(config), device, tuple(sorted(overrides.items())))
        if key not in self._served:
            self._served[key] = self._stack.enter_context(server(config, device, **overrides))
        return self._served[key]

    def close(self) -> None:
        self._stack.close()
        self._served.clear()


# A server in its own process, serving the `service` package of a given checkout: how a benchmark compares
# the current tree with an older commit (a `git worktree`). Both sides of such a comparison run this way, so
# they differ in the code under test only.


@dataclass
class Live:
    url: str
    pid: int
    log: Path  # the server's stdout and stderr

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def errors(self) -> list[str]:
        """Lines of the server's log that report an error (tracebacks, ERROR records)."""
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]


ROOT = Path(__file__).resolve().parents[1]  # this checkout


def checkouts(before: Path | None) -> list[tuple[str, Path]]:
    """(label, path) of the trees a before/after benchmark measures: the older one first, then this one.

    The label goes into row names: "" for this checkout, " (<short commit>)" for the other.
    """
    if before is None:
        return [("", ROOT)]
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=before, capture_output=True, text=True)
    return [(f" ({out.stdout.strip() or before.name})", before.resolve()), ("", ROOT)]


@contextmanager
def live_server(tree: Path, config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[Live]:
    """`python bench/serve.py` with cwd `tree`, so `service` is imported from there; ready once this yields.

    `env` adds SALIENCY_* settings; the model is loaded (by one raw pass) before this yields.
    """
    port = free_port()
    script = Path(__file__).with_name("serve.py")
    environ = {**os.environ, "PYTHONPATH": str(tree), **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(config), str(port)], cwd=tree, env=environ, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server in {tree} did not start; its log, {log}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        httpx.get(f"{url}/bench/raw", params={"n": 1, "repeats": 1}, timeout=300).raise_for_status()
        yield Live(url, proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Context:
    plan: Plan
    folder: Path  # for configs; lives as long as the run
    servers: Servers
    before: Path | None = None  # a checkout of the old commit: benchmarks that compare measure it too
