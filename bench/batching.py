"""Batching: images per second with `clients` concurrent clients over raw batched torch throughput.

Each client sends one image at a time and sends the next as soon as its answer arrives (a closed loop). The
rate is taken between the completion of round `warm_cycles` and round `warm_cycles + timed_cycles`. The
engine packs the rows of whatever requests are waiting into each pass (service/engine), so the limit is
the raw fwd+bwd rate at batch `clients` of the user's own model, unprepared (`loaded.prepared.original`).

With `--before DIR` the same figure is also measured for the older checkout and for this one, each server in
its own process with the raw rate timed in that process (`bench/serve.py`), alternating.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack

import httpx

from .common import (
    MODEL,
    Context,
    Plan,
    Report,
    Row,
    checkouts,
    fwd_bwd,
    live_server,
    median,
    model_input,
    timed,
    user_model,
    write_config,
)
from .overhead import explain_body

TARGET = (">=", 0.9)


async def closed_loop(url: str, body: bytes, plan: Plan) -> tuple[int, float, int]:
    """(images, seconds) over the timed rounds, and the number of answers in all."""
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
    return plan.clients * plan.timed_cycles, stop - start, len(done)


def raw_rate(model, x, plan: Plan, repeats: int = 3) -> float:
    """Seconds of `repeats` batched fwd+bwd passes after a warm-up one; images per second."""
    fwd_bwd(model, x)
    return len(x) / median([timed(lambda: fwd_bwd(model, x), plan.device) for _ in range(repeats)])


def remote_raw_rate(url: str, n: int) -> float:
    """The same, timed inside the server's process on the model it serves (bench/serve.py)."""
    response = httpx.get(f"{url}/bench/raw", params={"n": n, "repeats": 3}, timeout=600)
    response.raise_for_status()
    return response.json()["images_per_second"]


def in_process(ctx: Context, body: bytes) -> Report:
    """The recorded figure: the server on a thread of this process, the raw limit on its very model."""
    plan = ctx.plan
    served = ctx.servers.get(write_config(ctx.folder, "resnet18", plan.size), plan.device)
    model = user_model(served.loaded)  # the user's own model, unprepared: the limit without the service
    x = model_input(served.loaded, plan.clients)
    # Raw, served, raw, twice over, so slow changes in the machine's load reach both sides alike.
    limits = [raw_rate(model, x, plan)]
    images, seconds = 0, 0.0
    for _ in range(2):
        done, took, _ = asyncio.run(closed_loop(served.url, body, plan))
        images, seconds = images + done, seconds + took
        limits.append(raw_rate(model, x, plan))
    limit = median(limits)
    single = raw_rate(model, x[:1], plan, repeats=5)
    where = f"resnet18 {plan.size}px, gradient, {plan.clients} clients, 2 x {plan.timed_cycles} rounds timed"
    return Report(
        rows=[
            Row(
                f"batching: {plan.clients} clients / raw batch {plan.clients}",
                images / seconds,
                limit,
                "img/s",
                TARGET,
                where,
            ),
            Row(
                "raw batch / raw single",
                limit,
                single,
                "img/s",
                None,
                f"the most batching can buy on this device (batch {plan.clients} vs 1)",
            ),
        ],
        notes=[f"batching: raw batch-{plan.clients} rates {', '.join(f'{r:.2f}' for r in limits)} img/s over the run"],
    )


def before_after(ctx: Context, body: bytes, rounds: int = 3) -> Report:
    """The same figure for each checkout, each server in its own process; rounds alternate between them."""
    plan = ctx.plan
    config = write_config(ctx.folder, "resnet18", plan.size)
    trees = checkouts(ctx.before)
    ratios: dict[str, list[float]] = {label: [] for label, _ in trees}
    cpu: dict[str, list[float]] = {label: [] for label, _ in trees}  # server CPU seconds per answer
    with ExitStack() as stack:
        servers = {
            label: stack.enter_context(live_server(path, config, ctx.folder / f"batching-{i}.log"))
            for i, (label, path) in enumerate(trees)
        }
        for _ in range(rounds):
            for label, live in servers.items():
                before = remote_raw_rate(live.url, plan.clients)
                started = live.cpu_seconds()
                images, seconds, answers = asyncio.run(closed_loop(live.url, body, plan))
                cpu[label].append((live.cpu_seconds() - started) / answers)
                limit = median([before, remote_raw_rate(live.url, plan.clients)])
                ratios[label].append(images / seconds / limit)
    report = Report()
    for label, values in ratios.items():
        name = "this tree" if not label else label.strip(" ()")
        report.notes.append(
            f"batching, own process, {name}: {plan.clients} clients / raw batch {plan.clients} per round "
            + ", ".join(f"{v:.3f}" for v in values)
            + f"; server CPU per image {median(cpu[label]) * 1000:.0f} ms (all threads)"
        )
    old, new = (median(ratios[label]) for label, _ in trees)
    report.rows.append(
        Row(
            f"batching: this tree / {trees[0][0].strip(' ()')} (own processes)",
            new,
            old,
            "x",
            None,
            f"{plan.clients} clients / raw batch {plan.clients}, each server in its own process, "
            f"median of {rounds} rounds",
        )
    )
    return report


def run(ctx: Context) -> Report:
    body = explain_body(ctx.plan.size)
    report = in_process(ctx, body)
    if ctx.before is not None:
        report.extend(before_after(ctx, body))
    return report
