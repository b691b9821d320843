"""`run`: plans to completion on the calling thread, the engine's one synchronous entry (scripts, tests,
benchmarks). The server's device workers (device.py) run the same scheduler and executor, with many jobs."""

from __future__ import annotations

import torch
from torch import nn

from .executor import device_context, run_pass
from .jobs import Job, PlanState
from .plan import Plan, Scoring
from .policy import Scheduler


def run(
    module: nn.Module,
    plans: list[Plan],
    objective: Scoring = "logit",
    *,
    chunk_size: int = 64,
    channels_last: bool = False,
    autocast: str = "off",
    device: torch.device | None = None,
) -> list[object]:
    """Each plan's result, in order. `chunk_size` bounds a pass's rows; results do not depend on it.
    `autocast` ("bf16", "fp16") applies on a CUDA `device` only, as on the server."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    job = Job(module, [PlanState(p) for p in plans], objective, capacity=chunk_size, total_rows=0)
    scheduler = Scheduler()
    scheduler.add(job)
    with device_context(device or torch.device("cpu"), autocast):
        while (chunk := scheduler.next_chunk()) is not None:
            parts = [(slot.rows, a, b) for _, slot, a, b in chunk.parts]
            outputs = run_pass(chunk.module, parts, chunk.objective, channels_last)
            scheduler.complete(chunk, outputs)
    if job.error is not None:
        raise job.error
    return job.results()
