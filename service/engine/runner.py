"""The event loop's side of the engine: the queue's admission by rows, one device worker per device,
cancellation and the engine's metrics.

A request's plans become one job that the device's scheduler interleaves row by row with every other
request on that device, across models. A request that is cancelled (its client left, or its deadline
passed) is dropped by the device thread before its next chunk. What the plans are is the caller's business
(service.core.plans): the runner takes a function that builds them on the device thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import Overloaded
from ..metrics import Metrics
from ..models import LoadedModel
from ..settings import Settings
from .device import DeviceWorker, Ticket
from .jobs import Job, PlanState
from .pacing import DEFAULT_TARGET_MS, FIRST_ROWS, Pacer
from .plan import Plan, Scoring
from .policy import Chunk

Progress = Callable[[int, int], None]  # (rows done, rows in all)

MAX_PASS_ROWS = 1024  # a bound for models whose row is measured as almost nothing
# The rows' measured memory may fill this share of the budget: the rest is for what a row's measurement does
# not see (a pass's inputs and gradients beside autograd's saved tensors, the plans' buffers). At 100 %,
# SmoothGrad-256 on resnet50 peaked at 1.02 of the budget (bench/README.md, issue 19's re-measure).
BUDGET_SHARE = 0.9


def chunk_rows(loaded: LoadedModel, settings: Settings, extra_row_bytes: int = 0) -> int:
    """The most rows a pass may have: the configured maximum, lowered to fit the memory budget (with
    `extra_row_bytes` a row, e.g. captured attention). How many a pass has within it is the pass-time
    target's choice (pacing.py)."""
    configured = settings.chunk_size or MAX_PASS_ROWS
    by_budget = int(settings.memory_budget_bytes * BUDGET_SHARE) // max(1, loaded.row_bytes + extra_row_bytes)
    return int(max(1, min(configured, by_budget)))


def pacer_for(device: torch.device, settings: Settings) -> Pacer:
    target = settings.pass_target_ms or DEFAULT_TARGET_MS.get(device.type, DEFAULT_TARGET_MS["cuda"])
    return Pacer(target, FIRST_ROWS.get(device.type, FIRST_ROWS["cuda"]))


@dataclass(eq=False)
class Reservation:
    """Rows a request holds in its device's queue, from admission (before decoding) to its answer."""

    device: str
    model: str
    rows: int
    images: int
    released: bool = False


class EngineRunner:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._workers: dict[str, DeviceWorker] = {}
        self._queued_rows: dict[str, int] = defaultdict(int)  # admitted and not finished, per device
        self._queued_images: dict[str, int] = defaultdict(int)  # per model, for the autoscaler's gauge

    def worker(self, device: torch.device) -> DeviceWorker:
        key = str(device)
        if key not in self._workers:
            worker = DeviceWorker(
                device,
                pacer_for(device, self.settings),
                autocast=self.settings.autocast,
                channels_last=self.settings.channels_last,
                age_limit=self.settings.scheduler_age_limit,
            )
            worker.on_chunk = lambda chunk, seconds: self._observe_chunk(key, chunk, seconds)
            self.metrics.busy.labels(key).set_function(worker.busy_fraction)
            self._workers[key] = worker
        return self._workers[key]

    def reserve(self, loaded: LoadedModel, rows: int, images: int) -> Reservation:
        """Admits `rows` into the device's queue or refuses them (429): the request's only queue check, made
        before decoding so that a refusal is cheap. The rows count for others from now on; `release` ends it."""
        device = str(loaded.device)
        queued = self._queued_rows[device]
        if queued + rows > self.settings.max_queue_rows:
            raise Overloaded(
                f"device {device} has {queued} rows (model passes) queued; this request needs {rows}, "
                f"the limit is {self.settings.max_queue_rows}",
                headers={"Retry-After": str(self.retry_after(device, queued + rows))},
            )
        self._count(device, loaded.spec.name, rows, images)
        return Reservation(device, loaded.spec.name, rows, images)

    def release(self, reservation: Reservation) -> None:
        if not reservation.released:
            reservation.released = True
            self._count(reservation.device, reservation.model, -reservation.rows, -reservation.images)

    @contextmanager
    def reserved(self, loaded: LoadedModel, rows: int, images: int) -> Iterator[Reservation]:
        reservation = self.reserve(loaded, rows, images)
        try:
            yield reservation
        finally:
            self.release(reservation)

    def retry_after(self, device: str, rows: int) -> int:
        """Seconds to drain `rows` at the device's measured rate (1 s when nothing is measured yet)."""
        worker = self._workers.get(device)
        rate = worker.rows_per_second() if worker is not None else 0.0
        return max(1, min(600, math.ceil(rows / rate))) if rate > 0 else 1

    async def submit(
        self,
        loaded: LoadedModel,
        module: nn.Module,
        build: Callable[[], list[Plan]],
        objective: Scoring,
        rows: int,
        progress: Progress | None = None,
        reservation: Reservation | None = None,
        extra_row_bytes: int = 0,
    ) -> list[object]:
        """The plans' results, in order. `build` makes the plans on the device thread (it moves the inputs
        there); `rows` is their total, for progress. Without a `reservation` the rows are admitted here.
        `extra_row_bytes`: memory a row of these plans takes beyond the model's measured row."""
        if reservation is None:
            with self.reserved(loaded, rows, 0) as held:
                return await self.submit(loaded, module, build, objective, rows, progress, held, extra_row_bytes)
        capacity = chunk_rows(loaded, self.settings, extra_row_bytes)

        def job() -> Job:
            return Job(module, [PlanState(p) for p in build()], objective, capacity, rows)

        loop = asyncio.get_running_loop()
        ticket = Ticket(job, rows, loop, loop.create_future(), progress)
        worker = self.worker(loaded.device)
        model = loaded.spec.name
        self.metrics.in_flight.inc()
        try:
            worker.submit(ticket)
            results = await ticket.future
            self.metrics.engine_seconds.labels(model).observe(time.perf_counter() - ticket.submitted)
            return results
        finally:
            self.metrics.in_flight.dec()
            if not ticket.future.done() or ticket.future.cancelled():
                # The client left or the deadline passed: the device thread drops the rest before its next chunk.
                ticket.abandoned = True
                worker.wake()
                self.metrics.cancellations.labels(model).inc()

    def _count(self, device: str, model: str, rows: int, images: int) -> None:
        # Every change updates the gauges: the autoscaler reads them, and a stale value scales on ghosts.
        self._queued_rows[device] += rows
        self._queued_images[model] += images
        self.metrics.queue_rows.labels(device).set(self._queued_rows[device])
        self.metrics.queue_depth.labels(model).set(self._queued_images[model])

    def _observe_chunk(self, device: str, chunk: Chunk, seconds: float) -> None:
        kind = "backward" if chunk.parts and chunk.parts[0][1].rows.needs_backward else "forward"
        self.metrics.rows.labels(device, kind).inc(chunk.size)
        self.metrics.chunk_rows.labels(device).observe(chunk.size)
        self.metrics.busy_seconds.labels(device).inc(seconds)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
