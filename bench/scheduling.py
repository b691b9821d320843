"""Scheduling: what cheap requests wait for while expensive ones run, and what a multi-method request costs.

- Head-of-line: one Integrated Gradients request (`hol_steps` steps) runs; `hol_probes` gradient requests are
  sent at even intervals over the time it takes alone (each only while it still runs). Median probe latency
  over the IG request's time alone (target <= 0.1), and the IG request's time with the probes over alone
  (target <= 1.3).
- Mixed load: open-loop Poisson arrivals (`mixed_rate` per second for `mixed_seconds`, seed `mixed_seed`:
  the same schedule for every server), 90% cheap (gradient or Grad-CAM) and 10% expensive (IG with
  `hol_steps` steps or occlusion, window 16, stride 8). p50 and p99 latency per class, over the class's
  latency alone on the same idle server (the mean of its two methods' medians, as they are drawn 50/50).
- Multi-method: one request for gradient, input x gradient, Grad-CAM and Grad-CAM++ (which share passes)
  over one gradient request (target <= 1.3).

resnet18 (random weights) at `scheduling_size`, float16 array + overlay PNG back, as in the overhead
benchmark. Each server runs in its own process (`common.live_server`): this checkout and, with
`--before DIR`, an older commit's checkout, measured alternately in the same run with the same code.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from .common import MODEL, Context, Live, Plan, Report, Row, checkouts, live_server, median, write_config
from .overhead import explain_body, explain_spec

PATH = f"/v1/models/{MODEL}/explain"
JSON = {"content-type": "application/json"}
CHEAP = ("gradient", "gradcam")
EXPENSIVE = ("integrated_gradients", "occlusion")
MULTI = ("gradient", "input_x_gradient", "gradcam", "gradcam_pp")
HOL_TARGET = ("<=", 0.1)
SLOWDOWN_TARGET = ("<=", 1.3)
MULTI_TARGET = ("<=", 1.3)


@dataclass
class Tree:
    """One checkout under test and what was measured on its server."""

    label: str  # "" for this checkout, " (<commit>)" for the old one: it goes into the row names
    path: Path
    live: Live | None = None
    alone: dict[str, list[float]] = field(default_factory=dict)  # seconds per method, idle server
    ig_traffic: list[float] = field(default_factory=list)
    probes: list[float] = field(default_factory=list)
    trials: list[tuple[float, float]] = field(default_factory=list)  # per trial: probes median / alone, with / alone
    mixed: list[tuple[str, float, int]] = field(default_factory=list)  # (method, seconds, status)
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.live is not None
        return self.live.url


def bodies(plan: Plan) -> dict[str, bytes]:
    size = plan.scheduling_size
    return {
        "gradient": explain_body(size, "gradient"),
        "gradcam": explain_body(size, "gradcam"),
        "integrated_gradients": explain_body(size, {"name": "integrated_gradients", "steps": plan.hol_steps}),
        "occlusion": explain_body(size, {"name": "occlusion", "window": 16, "stride": 8}),
    }


def multi_body(plan: Plan) -> bytes:
    spec = explain_spec(plan.scheduling_size)
    del spec["method"]
    spec["methods"] = [{"name": name} for name in MULTI]
    return json.dumps(spec).encode()


def async_client(url: str) -> httpx.AsyncClient:
    # No connection limit: an open-loop client must not queue its own requests.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=url, timeout=600, limits=limits)


async def post(client: httpx.AsyncClient, body: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.post(PATH, content=body, headers=JSON)
    return time.perf_counter() - started, response.status_code


async def ok(client: httpx.AsyncClient, body: bytes) -> float:
    started = time.perf_counter()
    response = await client.post(PATH, content=body, headers=JSON)
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code} from {client.base_url}: {response.text[:500]}")
    return time.perf_counter() - started


async def one_at_a_time(url: str, body: bytes, repeats: int) -> list[float]:
    async with async_client(url) as client:
        return [await ok(client, body) for _ in range(repeats)]


async def head_of_line(url: str, long: bytes, probe: bytes, alone: float, probes: int) -> tuple[float, list[float]]:
    """(the long request's seconds, the latencies of the probes sent while it ran)."""
    async with async_client(url) as client:
        task = asyncio.create_task(ok(client, long))

        async def probe_after(delay: float) -> float | None:
            await asyncio.sleep(delay)
            return None if task.done() else await ok(client, probe)

        delays = [alone * k / (probes + 1) for k in range(1, probes + 1)]
        latencies = await asyncio.gather(*(probe_after(d) for d in delays))
        seconds = await task
    return seconds, [s for s in latencies if s is not None]


def arrivals(plan: Plan) -> list[tuple[float, str]]:
    """(seconds after the start, method): Poisson arrivals, 90% cheap, 10% expensive, from a fixed seed."""
    rng = random.Random(plan.mixed_seed)
    out, at = [], 0.0
    while (at := at + rng.expovariate(plan.mixed_rate)) < plan.mixed_seconds:
        out.append((at, rng.choice(CHEAP if rng.random() < 0.9 else EXPENSIVE)))
    return out


async def open_loop(url: str, bodies: dict[str, bytes], schedule: list[tuple[float, str]]) -> tuple[list, float]:
    """[(method, seconds, status)] and the largest delay between a request's due time and its sending."""
    async with async_client(url) as client:
        start = time.perf_counter()

        async def one(at: float, method: str) -> tuple[str, float, int, float]:
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            late = time.perf_counter() - start - at
            seconds, status = await post(client, bodies[method])
            return method, seconds, status, late

        results = await asyncio.gather(*(one(at, method) for at, method in schedule))
    return [r[:3] for r in results], max((r[3] for r in results), default=0.0)


def device_busy_seconds(url: str) -> float | None:
    """The engine's own busy-time counter, where the server has one (the row scheduler's metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(r"^saliency_device_busy_seconds_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def measure_alone(tree: Tree, plan: Plan, payloads: dict[str, bytes]) -> None:
    for body in payloads.values():  # warm-up: the first backward, CAM hooks, connections
        asyncio.run(one_at_a_time(tree.url, body, 1))
    for _ in range(plan.alone_repeats):
        for method in CHEAP:
            tree.alone.setdefault(method, []).extend(asyncio.run(one_at_a_time(tree.url, payloads[method], 1)))
    tree.alone["occlusion"] = asyncio.run(one_at_a_time(tree.url, payloads["occlusion"], plan.hol_repeats))


def measure_head_of_line(tree: Tree, plan: Plan, payloads: dict[str, bytes]) -> None:
    (alone,) = asyncio.run(one_at_a_time(tree.url, payloads["integrated_gradients"], 1))
    tree.alone.setdefault("integrated_gradients", []).append(alone)
    seconds, latencies = asyncio.run(
        head_of_line(tree.url, payloads["integrated_gradients"], payloads["gradient"], alone, plan.hol_probes)
    )
    tree.ig_traffic.append(seconds)
    tree.probes += latencies
    if latencies:  # none when the IG request ended before the first probe was due
        tree.trials.append((median(latencies) / alone, seconds / alone))


def measure_mixed(tree: Tree, plan: Plan, payloads: dict[str, bytes]) -> None:
    assert tree.live is not None
    schedule = arrivals(plan)
    cpu, busy, started = tree.live.cpu_seconds(), device_busy_seconds(tree.url), time.perf_counter()
    tree.mixed, late = asyncio.run(open_loop(tree.url, payloads, schedule))
    wall = time.perf_counter() - started
    cpu_share = (tree.live.cpu_seconds() - cpu) / (wall * (os.cpu_count() or 1))
    busy_after = device_busy_seconds(tree.url)
    device = f", device busy {(busy_after - busy) / wall:.0%}" if busy is not None and busy_after is not None else ""
    failed = [status for _, _, status in tree.mixed if status != 200]
    tree.notes.append(
        f"mixed load{tree.label}: {len(schedule)} requests at {plan.mixed_rate}/s for {plan.mixed_seconds:.0f} s "
        f"(seed {plan.mixed_seed}), done in {wall:.0f} s; server CPU {cpu_share:.0%} of {os.cpu_count()} cores"
        f"{device}; sent up to {late * 1000:.0f} ms late; non-200 answers: {sorted(failed) or 'none'}"
    )


def measure_multi(tree: Tree, plan: Plan) -> Row | str:
    """One multi-method request over one gradient request, alternating; a note when the API refuses it."""
    body, single = multi_body(plan), explain_body(plan.scheduling_size, "gradient")
    with httpx.Client(base_url=tree.url, timeout=600) as client:
        first = client.post(PATH, content=body, headers=JSON)
        if first.status_code != 200:  # 422 until the API accepts `methods`
            return f"multi-method: not measured, the API answered {first.status_code}: {first.text[:300]}"
        explanations = first.json()["results"][0].get("explanations")
        if not isinstance(explanations, list) or len(explanations) != len(MULTI):
            raise RuntimeError(f"multi-method: expected {len(MULTI)} explanations, got {explanations!r:.300}")
        times: dict[bytes, list[float]] = {body: [], single: []}
        for repeat in range(plan.multi_repeats + 1):
            for payload in (single, body):
                started = time.perf_counter()
                client.post(PATH, content=payload, headers=JSON).raise_for_status()
                if repeat:  # the first round warms up
                    times[payload].append(time.perf_counter() - started)
    where = f"resnet18 {plan.scheduling_size}px, {' + '.join(MULTI)}, median of {plan.multi_repeats}"
    return Row(
        f"multi-method{tree.label}: 4 methods / gradient",
        median(times[body]) * 1000,
        median(times[single]) * 1000,
        "ms",
        MULTI_TARGET,
        where,
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def rows(tree: Tree, plan: Plan) -> list[Row]:
    ig_alone = median(tree.alone["integrated_gradients"])
    where = f"resnet18 {plan.scheduling_size}px, IG-{plan.hol_steps}, {len(tree.probes)} gradient probes"
    out = [
        Row(
            f"head-of-line{tree.label}: gradient during IG / IG alone",
            median(tree.probes) * 1000,
            ig_alone * 1000,
            "ms",
            HOL_TARGET if not tree.label else None,
            where + f", probe latency {min(tree.probes) * 1000:.0f}-{max(tree.probes) * 1000:.0f} ms",
        ),
        Row(
            f"head-of-line{tree.label}: IG with traffic / alone",
            median(tree.ig_traffic) * 1000,
            ig_alone * 1000,
            "ms",
            SLOWDOWN_TARGET if not tree.label else None,
            f"median of {len(tree.ig_traffic)}",
        ),
    ]
    for name, methods in (("cheap", CHEAP), ("expensive", EXPENSIVE)):
        latencies = [seconds for method, seconds, status in tree.mixed if method in methods and status == 200]
        alone = sum(median(tree.alone[m]) for m in methods) / len(methods)
        for q in (50, 99):
            out.append(
                Row(
                    f"mixed load{tree.label}: {name} p{q} / alone",
                    percentile(latencies, q) * 1000,
                    alone * 1000,
                    "ms",
                    None,
                    f"{len(latencies)} requests ({', '.join(methods)})",
                )
            )
    return out


def notes(tree: Tree) -> list[str]:
    """The measurements behind the rows, and the server's log errors (read while it still runs)."""
    out = [
        *tree.notes,
        f"head-of-line{tree.label}: per trial (each over the IG time alone just before it), probes "
        + ", ".join(f"{a:.3f}" for a, _ in tree.trials)
        + "; IG with traffic "
        + ", ".join(f"{b:.2f}" for _, b in tree.trials),
    ]
    for method, seconds in tree.alone.items():
        out.append(
            f"alone{tree.label}: {method} median {median(seconds) * 1000:.0f} ms "
            f"(range {min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f}, {len(seconds)} requests)"
        )
    for q in (50, 99):
        by_method = ", ".join(
            f"{m} {percentile([s for n, s, c in tree.mixed if n == m and c == 200], q) * 1000:.0f}"
            for m in (*CHEAP, *EXPENSIVE)
        )
        out.append(f"mixed load{tree.label}: p{q} per method (ms): {by_method}")
    assert tree.live is not None
    errors = tree.live.errors()
    if errors:
        out.append(f"server log{tree.label}: {len(errors)} error lines, first: {errors[0][:200]}")
    return out


def run(ctx: Context) -> Report:
    plan = ctx.plan
    config = write_config(ctx.folder, "resnet18", plan.scheduling_size)
    payloads = bodies(plan)
    trees = [Tree(label, path) for label, path in checkouts(ctx.before)]
    current = trees[-1]
    report = Report()
    with ExitStack() as stack:
        for i, tree in enumerate(trees):
            tree.live = stack.enter_context(live_server(tree.path, config, ctx.folder / f"scheduling-{i}.log"))
        for tree in trees:
            measure_alone(tree, plan, payloads)
        multi = measure_multi(current, plan)
        for _ in range(plan.hol_repeats):  # alternating, so slow changes in the machine's load reach every side
            for tree in trees:
                measure_head_of_line(tree, plan, payloads)
        for tree in trees:
            measure_mixed(tree, plan, payloads)
        for tree in trees:
            report.rows += rows(tree, plan)
            report.notes += notes(tree)
    if isinstance(multi, Row):
        report.rows.append(multi)
    else:
        report.notes.append(multi)
    return report
