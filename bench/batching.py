"""Batching: images per second with `clients` concurrent clients over raw batched torch throughput.

Each client sends one image at a time and sends the next as soon as its answer arrives (a closed loop), so
with batching on the server sees rounds of `clients` requests. The rate is taken between the completion of
round `warm_cycles` and round `warm_cycles + timed_cycles`. The same load with batching switched off gives the
speed-up that batching buys.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from .common import MODEL, Context, Plan, Report, Row, fwd_bwd, median, model_input, timed, write_config
from .overhead import explain_body

TARGET = (">=", 0.85)


async def closed_loop(url: str, body: bytes, plan: Plan) -> tuple[int, float]:
    """(images, seconds) over the timed rounds."""
    total = plan.clients * (plan.warm_cycles + plan.timed_cycles)
    done: list[float] = []
    limits = httpx.Limits(max_connections=plan.clients, max_keepalive_connections=plan.clients)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client() -> None:
            while len(done) < total:
                response = await client.post(f"/v1/models/{MODEL}/explain", content=body, headers=headers)
                response.raise_for_status()
                done.append(time.perf_counter())

        await asyncio.gather(*(one_client() for _ in range(plan.clients)))
    done.sort()
    start, stop = done[plan.clients * plan.warm_cycles - 1], done[total - 1]
    return plan.clients * plan.timed_cycles, stop - start


def raw_rate(model, x, plan: Plan, repeats: int = 3) -> float:
    """Seconds of `repeats` batched fwd+bwd passes after a warm-up one; images per second."""
    fwd_bwd(model, x)
    return len(x) / median([timed(lambda: fwd_bwd(model, x), plan.device) for _ in range(repeats)])


def run(ctx: Context) -> Report:
    plan = ctx.plan
    config = write_config(ctx.folder, "resnet18", plan.size)
    body = explain_body(plan.size)
    served = {"on": ctx.servers.get(config, plan.device), "off": ctx.servers.get(config, plan.device, batching=False)}
    model = served["on"].loaded.module  # the raw limit runs on the batching server's own model
    batch = min(plan.clients, served["on"].settings.max_batch_size)
    x = model_input(served["on"].loaded, batch)
    # Raw, on, raw, off, twice over, so slow changes in the machine's load reach every side alike.
    limits = [raw_rate(model, x, plan)]
    totals = {"on": [0, 0.0], "off": [0, 0.0]}
    for _ in range(2):
        for mode, server in served.items():
            images, seconds = asyncio.run(closed_loop(server.url, body, plan))
            totals[mode][0] += images
            totals[mode][1] += seconds
            limits.append(raw_rate(model, x, plan))
    rate = {mode: images / seconds for mode, (images, seconds) in totals.items()}
    limit = median(limits)
    single = raw_rate(model, x[:1], plan, repeats=5)
    where = f"resnet18 {plan.size}px, gradient, {plan.clients} clients, 2 x {plan.timed_cycles} rounds timed"
    return Report(
        rows=[
            Row(f"batching: {plan.clients} clients / raw batch {batch}", rate["on"], limit, "img/s", TARGET, where),
            Row("batching on / off", rate["on"], rate["off"], "img/s", None, "speed-up that batching buys here"),
            Row(
                "raw batch / raw single",
                limit,
                single,
                "img/s",
                None,
                f"the most batching can buy on this device (batch {batch} vs 1)",
            ),
        ],
        notes=[f"batching: raw batch-{batch} rates {', '.join(f'{r:.2f}' for r in limits)} img/s over the run"],
    )
