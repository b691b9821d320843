"""Pass size by time: what the pass-time target (SALIENCY_PASS_TARGET_MS) trades, engine only.

Through the device worker (EngineRunner, the server's scheduler and executor; no HTTP, decode or encode),
resnet18 at the scheduling size: an Integrated Gradients request alone (the time a user waits), and the wait
of a gradient request sent while a 256-step IG runs (head-of-line), for fixed 8-row passes (the old default)
and for each target. Ratios are against the fixed 8-row passes, measured in the same run.
"""

from __future__ import annotations

import asyncio
import time

import torch

from service.core import plans
from service.engine.runner import EngineRunner
from service.explainers import default_registry

from .common import Context, Report, Row, load_model, median, write_config

TARGETS_MS = (50.0, 100.0, 250.0, 500.0, 1000.0)


def ig_alone(loaded, settings_overrides: dict, steps: int, repeats: int) -> float:
    from service.settings import Settings

    runner = EngineRunner(Settings(device=str(loaded.device), **settings_overrides))
    method = default_registry().parse({"name": "integrated_gradients", "steps": steps})
    x = torch.randn(1, 3, *loaded.spec.input_size)
    times = []
    for _ in range(repeats + 1):  # the first run teaches the pacer this kind of pass
        started = time.perf_counter()
        asyncio.run(plans.explain(runner, loaded, [method], x, torch.tensor([-1]), "logit"))
        times.append(time.perf_counter() - started)
    runner.close()
    return median(times[1:])


def head_of_line(loaded, settings_overrides: dict, steps: int) -> float:
    from service.settings import Settings

    runner = EngineRunner(Settings(device=str(loaded.device), **settings_overrides))
    heavy = default_registry().parse({"name": "integrated_gradients", "steps": steps})
    cheap = default_registry().parse("gradient")
    x = torch.randn(1, 3, *loaded.spec.input_size)
    done: list[int] = []

    async def scenario() -> list[float]:
        long = asyncio.ensure_future(
            plans.explain(runner, loaded, [heavy], x, torch.tensor([-1]), "logit", lambda d, _n: done.append(d))
        )
        while len(done) < 2:
            await asyncio.sleep(0.001)
        waits = []
        while not long.done():
            started = time.perf_counter()
            await plans.explain(runner, loaded, [cheap], x, torch.tensor([-1]), "logit")
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        return waits

    waits = asyncio.run(scenario())
    runner.close()
    return median(waits)


def run(ctx: Context) -> Report:
    plan = ctx.plan
    size = plan.scheduling_size
    loaded, _ = load_model(write_config(ctx.folder, "resnet18", size), plan.device)
    steps, repeats = plan.ig_steps, plan.heavy_repeats
    hol_steps = plan.hol_steps
    fixed = {"chunk_size": 8}
    base_alone = ig_alone(loaded, fixed, steps, repeats)
    base_wait = head_of_line(loaded, fixed, hol_steps)
    report = Report()
    targets = TARGETS_MS[1:3] if plan.quick_pacing else TARGETS_MS
    for target in targets:
        paced = {"pass_target_ms": target}
        report.rows.append(
            Row(
                f"pacing {target:g} ms: IG-{steps} alone, engine only",
                ig_alone(loaded, paced, steps, repeats) * 1000,
                base_alone * 1000,
                "ms",
                None,
                f"resnet18 at {size}; baseline: fixed 8-row passes",
            )
        )
        report.rows.append(
            Row(
                f"pacing {target:g} ms: gradient wait during IG-{hol_steps}, engine only",
                head_of_line(loaded, paced, hol_steps) * 1000,
                base_wait * 1000,
                "ms",
                None,
                "median wait of gradient requests sent one after another; baseline: fixed 8-row passes",
            )
        )
    return report
