"""Overhead: end-to-end HTTP latency of one explain request over the raw torch forward+backward it needs.

The request is one JPEG at the model's input size, method gradient, the predicted class, a float16 array and
an overlay PNG back. The raw pass runs on the user's own model as the server loaded it, unprepared
(`loaded.prepared.original`: BatchNorm not folded), so what preparing the model buys counts for the service.
A second server with `fold_batchnorm=False` shows how much of that is the folding. Raw and HTTP timings
alternate, so a change in the machine's load hits both sides.
"""

from __future__ import annotations

import base64
import json
import time
from contextlib import ExitStack
from functools import partial

import httpx

from .common import (
    MODEL,
    Context,
    Plan,
    Report,
    Row,
    Served,
    fwd_bwd,
    jpeg_bytes,
    median,
    model_input,
    sample_image,
    timed,
    user_model,
    write_config,
)

TARGET = ("<=", 1.0)


def explain_spec(size: int, method: str | dict = "gradient") -> dict:
    """One JPEG at `size`, the predicted class, a float16 array and an overlay PNG back."""
    image = base64.b64encode(jpeg_bytes(sample_image(size))).decode("ascii")
    return {"images": [image], "method": method, "output": {"saliency": "float16", "overlay": True}}


def explain_body(size: int, method: str | dict = "gradient") -> bytes:
    return json.dumps(explain_spec(size, method)).encode()


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    response = client.post(f"/v1/models/{MODEL}/explain", content=body, headers={"content-type": "application/json"})
    response.raise_for_status()
    return response


def measure(clients: dict[str, tuple[httpx.Client, Served]], body: bytes, plan: Plan) -> dict[str, dict]:
    """Per repeat and server: the raw pass on the server's own model (unprepared, then prepared), then one request;
    medians of each."""
    raw: dict[str, list[float]] = {name: [] for name in clients}
    prepared: dict[str, list[float]] = {name: [] for name in clients}  # the module the server's passes run on
    http: dict[str, list[float]] = {name: [] for name in clients}
    parts: dict[str, list[dict]] = {name: [] for name in clients}
    inputs = {name: model_input(served.loaded) for name, (_, served) in clients.items()}
    models = {name: user_model(served.loaded) for name, (_, served) in clients.items()}  # unprepared
    for _ in range(3):  # warm-up: the first backward, the connections
        for name, (client, _) in clients.items():
            fwd_bwd(models[name], inputs[name])
            post(client, body)
    for _ in range(plan.overhead_repeats):
        for name, (client, _) in clients.items():
            raw[name].append(timed(partial(fwd_bwd, models[name], inputs[name]), plan.device))
            prepared[name].append(timed(partial(fwd_bwd, clients[name][1].loaded.module, inputs[name]), plan.device))
            started = time.perf_counter()
            response = post(client, body)
            http[name].append(time.perf_counter() - started)
            parts[name].append(response.json()["timing_ms"])
    return {
        name: {
            "raw": median(raw[name]),
            "raw_spread": (min(raw[name]), max(raw[name])),
            "prepared": median(prepared[name]),
            "http": median(http[name]),
            "server_ms": {k: median([t[k] for t in parts[name]]) for k in parts[name][0]},
        }
        for name in clients
    }


def profile(name: str, result: dict) -> str:
    http, raw, parts = result["http"] * 1000, result["raw"] * 1000, result["server_ms"]
    return (
        f"{name}: e2e {http:.1f} ms = handler {parts['total']:.1f} (decode {parts['decode']:.1f}, model "
        f"{parts['model']:.1f} incl. queue and thread hop, encode {parts['encode']:.1f}) + outside the handler "
        f"{http - parts['total']:.1f} (HTTP, request JSON parse, response serialisation); raw fwd+bwd of the "
        f"unprepared model {raw:.1f} ms, so model - raw = {parts['model'] - raw:.1f} ms; raw fwd+bwd of the module "
        f"the server runs (prepared) {result['prepared'] * 1000:.1f} ms"
    )


def run(ctx: Context) -> Report:
    plan = ctx.plan
    config = write_config(ctx.folder, "resnet18", plan.size)
    body = explain_body(plan.size)
    where = f"resnet18 {plan.size}px, gradient, float16 + overlay, median of {plan.overhead_repeats}"
    servers: dict[str, tuple[dict[str, object], tuple[str, float] | None, str]] = {
        "overhead: explain e2e / fwd+bwd": ({}, TARGET, where),
        "overhead, fold_batchnorm=False": ({"fold_batchnorm": False}, None, "the same, BatchNorm not folded"),
    }
    with ExitStack() as stack:
        clients = {}
        for name, (overrides, _, _) in servers.items():
            served = ctx.servers.get(config, plan.device, **overrides)
            clients[name] = (stack.enter_context(httpx.Client(base_url=served.url, timeout=120)), served)
        results = measure(clients, body, plan)
    report = Report()
    for name, (_, target, note) in servers.items():
        result = results[name]
        report.rows.append(Row(name, result["http"] * 1000, result["raw"] * 1000, "ms", target, note))
        report.notes.append(profile(name, result))
        low, high = result["raw_spread"]
        if high > 1.3 * low:  # other work on the machine: the medians still pair up, but say so
            report.notes.append(f"{name}: raw fwd+bwd ranged {low * 1000:.0f}-{high * 1000:.0f} ms, a busy machine")
    return report
