"""The 16-client burst of bench/breakdown.py: where a closed loop's wall time goes, per image.

bench/batching.py's request (resnet18 224 px, gradient, float16 + overlay), 16 clients in a closed loop, a
warm round, then timed rounds; twice, with the raw batch-16 rate of the user's model timed before, between and
after. Per image of the timed window: the device thread in passes (the model's forward/backward, and the rest
of a pass: row building, slicing), on its own work between passes (consume, scheduling), and idle (nothing
to run: the requests were in decode, encode or HTTP); the codec threads' work; and each request's stages as
for one request (bench/breakdown.py), medians over the timed requests.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx

from .batching import raw_rate
from .breakdown_stages import OtherLoad, stages, table
from .common import MODEL, Plan, Served, median, model_input, user_model
from .overhead import explain_body
from .tracing import HEADER, Pass, Probe

CLIENTS, WARM, TIMED = 16, 1, 4


async def closed_loop(url: str, body: bytes, start: int) -> tuple[list[tuple[str, tuple[float, float, float]]], int]:
    """(tag, client times) per answer in order of arrival, and the index of the first timed request's tag."""
    total, tags = CLIENTS * (WARM + TIMED), itertools.count(start)
    answers: list[tuple[str, tuple[float, float, float]]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client() -> None:
            while len(answers) < total:
                tag = f"burst-{next(tags)}"
                headers = {"content-type": "application/json", HEADER.decode(): tag}
                sent = time.perf_counter()
                response = await client.post(f"/v1/models/{MODEL}/explain", content=body, headers=headers)
                response.raise_for_status()
                now = time.perf_counter()
                answers.append((tag, (sent, now, now)))

        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return answers, next(tags)


def covered(spans: list[tuple[float, float]], start: float, stop: float) -> float:
    """Seconds of [start, stop] inside the union of `spans`."""
    total, reach = 0.0, start
    for a, b in sorted(spans):
        a, b = max(a, reach), min(b, stop)
        if b > a:
            total, reach = total + b - a, b
    return total


def burst(served: Served, probe: Probe) -> str:
    body, others = explain_body(224), OtherLoad()
    model, x = user_model(served.loaded), model_input(served.loaded, CLIENTS)
    plan = Plan()
    single = 1 / raw_rate(model, x[:1], plan)  # seconds of one row alone: with batch 16, a pass's expected time
    limits, images, wall = [raw_rate(model, x, plan)], 0, 0.0
    device = {"passes": 0.0, "model": 0.0, "thread": 0.0}
    passes: list[Pass] = []
    rows, codec_cpu, codec_wall, overlap = [], [], [], []
    start = 0
    for _ in range(2):
        probe.clear()
        answers, start = asyncio.run(closed_loop(served.url, body, start))
        window = (answers[CLIENTS * WARM - 1][1][1], answers[CLIENTS * (WARM + TIMED) - 1][1][1])
        images, wall = images + CLIENTS * TIMED, wall + window[1] - window[0]
        inside = [p for p in probe.passes if window[0] <= p.start and p.end <= window[1]]
        passes += inside
        device["passes"] += sum(p.seconds for p in inside)
        device["model"] += sum(p.model[1] - p.model[0] for p in inside)
        device["thread"] += sum(p.end - p.start - p.seconds for p in inside)
        timed = [(probe.traces[tag], client) for tag, client in answers[CLIENTS * WARM : CLIENTS * (WARM + TIMED)]]
        rows += [stages(trace, probe, client) for trace, client in timed]
        spans = [(s, e) for trace in probe.traces.values() for _, _, s, e, _, _ in trace.codec]
        codec_cpu += [sum(c[5] for c in trace.codec) for trace, _ in timed]
        codec_wall += [sum(c[3] - c[2] for c in trace.codec) for trace, _ in timed]
        overlap += [(covered(spans, *p.run) / p.seconds, p) for p in inside]
        limits.append(raw_rate(model, x, plan))
    raw = CLIENTS / median(limits)  # seconds per batch of 16
    ms = 1000 / images
    idle = wall - device["passes"] - device["thread"]

    def over_raw(p: Pass) -> float:
        """The pass's time over a raw pass of its rows, interpolated between batch 1 and batch 16."""
        return p.seconds / (single + (p.rows - 1) * (raw - single) / (CLIENTS - 1))

    busy = [over_raw(p) for share, p in overlap if share >= 0.5]
    calm = [over_raw(p) for share, p in overlap if share < 0.5]
    lines = [
        "#### 16 clients in a closed loop, resnet18 224 px, gradient, float16 + overlay: per image",
        "",
        "| where the wall time goes | ms per image |",
        "|---|---|",
        f"| device thread in passes ({len(passes)} passes, {sum(p.rows for p in passes) / len(passes):.1f} rows "
        f"each on average) | {device['passes'] * ms:.1f} |",
        f"|   of which forward/backward | {device['model'] * ms:.1f} |",
        f"| device thread between passes (consume, scheduling, settling) | {device['thread'] * ms:.1f} |",
        f"| device idle (no rows waiting: requests in decode, encode, HTTP) | {idle * ms:.1f} |",
        f"| **wall time per image (1 / throughput)** | **{wall * ms:.1f}** |",
        f"| raw fwd+bwd at batch 16, per image (the limit) | {raw * 1000 / CLIENTS:.1f} |",
        f"| **throughput / raw batch-16 throughput** | **{raw / CLIENTS / (wall / images):.3f}** |",
        f"| codec threads per image: wall / CPU (decode + encode, beside the device) | "
        f"{median(codec_wall) * 1000:.1f} / {median(codec_cpu) * 1000:.1f} |",
        f"| a pass's time / a raw pass of its rows: codec threads busy < half / >= half of it (passes) | "
        f"{_mean(calm):.2f} ({len(calm)}) / {_mean(busy):.2f} ({len(busy)}) |",
        "",
        f"2 x {TIMED} rounds timed; raw batch-16 rates {', '.join(f'{r:.1f}' for r in limits)} img/s; {others.note()}",
        "",
    ]
    note = f"per request, medians of {len(rows)} timed requests"
    baseline = ("raw fwd+bwd, batch 16", raw * 1000)
    return "\n".join(lines) + "\n" + table("16 clients: one request's stages", rows, baseline, note)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
