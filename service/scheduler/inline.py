"""Runs plans to completion on the calling thread: the engine's synchronous entry (tests, CLI, benchmarks).

The same scheduler and executor as the server's device workers, with one job, so the chunk loop exists once.
"""

from __future__ import annotations

from torch import nn

from ..explainers.base import Objective
from ..explainers.plan import Plan
from .executor import run_pass
from .jobs import Job, PlanState
from .policy import Scheduler


def run_plans(
    module: nn.Module, plans: list[Plan], objective: Objective, chunk_size: int, channels_last: bool = False
) -> list[object]:
    job = Job(module, [PlanState(p) for p in plans], objective, capacity=chunk_size, total_rows=0)
    scheduler = Scheduler()
    scheduler.add(job)
    while (chunk := scheduler.next_chunk()) is not None:
        parts = [(slot.rows, a, b) for _, slot, a, b in chunk.parts]
        outputs = run_pass(chunk.module, parts, chunk.objective, channels_last)
        scheduler.complete(chunk, outputs)
    if job.error is not None:
        raise job.error
    return job.results()
