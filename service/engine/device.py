"""The thread that owns one device: takes tickets from the event loop, asks the policy for chunks, runs them.

One thread per device, because a device runs one pass at a time anyway (on the CPU, torch's intra-op
threads already use every core). Between two chunks it drops the jobs whose clients gave up or whose
deadline passed, so an abandoned request frees the device within one chunk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import ShuttingDown
from .executor import device_context, run_pass
from .jobs import Job
from .pacing import Pacer, PassTimer
from .policy import Chunk, Scheduler

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Ticket:
    """The event loop's handle on a job: built, run and finished on the device thread."""

    build: Callable[[], Job]  # makes the plans (moves inputs to the device): runs on the device thread
    total_rows: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    on_progress: Callable[[int, int], None] | None = None
    abandoned: bool = False  # set by the event loop: the client left or the deadline passed
    job: Job | None = None
    submitted: float = field(default_factory=time.perf_counter)

    def _call(self, fn: Callable, *args) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def resolve(self, result: object = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if not self.future.done():
                self.future.set_exception(error) if error is not None else self.future.set_result(result)

        self._call(settle)

    def progress(self, done: int) -> None:
        if self.on_progress is not None:
            self._call(self.on_progress, min(done, self.total_rows), self.total_rows)


class DeviceWorker:
    def __init__(
        self,
        device: torch.device,
        pacer: Pacer | None = None,
        *,
        autocast: str = "off",
        channels_last: bool = False,
        age_limit: int = 4,
    ):
        self.device = device
        self.autocast = autocast
        self.channels_last = channels_last
        self.pacer = pacer
        self.scheduler = Scheduler(age_limit, pacer)
        self.tickets: dict[int, Ticket] = {}  # id(job) -> ticket
        self.on_chunk: Callable[[Chunk, float], None] | None = None
        self._inbox: list[Ticket] = []
        self._wake = threading.Condition()
        self._closed = False
        self._recent: deque[tuple[float, float, int]] = deque()  # (end, seconds, rows) of recent chunks
        self._thread = threading.Thread(target=self._loop, name=f"engine-{device}", daemon=True)
        self._thread.start()

    def submit(self, ticket: Ticket) -> None:
        with self._wake:
            if self._closed:
                raise ShuttingDown("the engine is shutting down")
            self._inbox.append(ticket)
            self._wake.notify()

    def wake(self) -> None:
        """Called when a ticket is abandoned, so an idle-looking worker re-checks at once."""
        with self._wake:
            self._wake.notify()

    def busy_fraction(self, window: float = 10.0) -> float:
        """Share of the last `window` seconds the device spent running passes."""
        return min(1.0, sum(seconds for _, seconds, _ in self._window(window)) / window)

    def rows_per_second(self, window: float = 60.0) -> float:
        """Throughput while busy, over the recent chunks (0 when none ran lately)."""
        recent = self._window(window)
        seconds = sum(s for _, s, _ in recent)
        return sum(rows for _, _, rows in recent) / seconds if seconds > 0 else 0.0

    def _window(self, window: float) -> list[tuple[float, float, int]]:
        now = time.perf_counter()
        while self._recent and self._recent[0][0] < now - 60.0:
            self._recent.popleft()
        return [entry for entry in list(self._recent) if entry[0] >= now - window]

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._inbox and not self.scheduler.jobs and not self._closed:
                    self._wake.wait()
                arrived, self._inbox = self._inbox, []
                closed = self._closed
            if closed:
                for ticket in [*arrived, *self.tickets.values()]:
                    ticket.resolve(error=ShuttingDown("the engine is shutting down"))
                return
            for ticket in arrived:
                self._start(ticket)
            self._drop_abandoned()
            chunk = self.scheduler.next_chunk()
            if chunk is not None:
                self._run(chunk)
            self._settle(self.scheduler.finished())  # jobs that failed outside a pass

    def _start(self, ticket: Ticket) -> None:
        if ticket.abandoned:
            return ticket.resolve(error=asyncio.CancelledError())
        try:
            job = ticket.build()
        except Exception as exc:  # a plan that cannot start (e.g. an unknown layer) fails its request only
            return ticket.resolve(error=exc)
        ticket.job = job
        self.tickets[id(job)] = ticket
        self.scheduler.add(job)

    def _drop_abandoned(self) -> None:
        for ticket in [t for t in self.tickets.values() if t.abandoned]:
            assert ticket.job is not None
            self.scheduler.remove(ticket.job)
            del self.tickets[id(ticket.job)]
            ticket.resolve(error=asyncio.CancelledError())

    def _run(self, chunk: Chunk) -> None:
        started = time.perf_counter()
        parts = [(slot.rows, a, b) for _, slot, a, b in chunk.parts]
        timer = PassTimer(self.device)
        try:
            with device_context(self.device, self.autocast), timer:
                outputs = run_pass(chunk.module, parts, chunk.objective, self.channels_last)
        except Exception as exc:  # the pass itself failed: every job in it gets the error
            log.exception("a pass failed on %s", self.device)
            finished = self.scheduler.fail(chunk, exc)
        else:
            if self.pacer is not None:
                self.pacer.observe(chunk.key, chunk.size, timer.seconds)
            finished = self.scheduler.complete(chunk, outputs)
        seconds = time.perf_counter() - started
        self._recent.append((time.perf_counter(), seconds, chunk.size))
        if self.on_chunk is not None:
            self.on_chunk(chunk, seconds)
        for job in {id(j): j for j, _, _, _ in chunk.parts}.values():
            ticket = self.tickets.get(id(job))
            if ticket is not None:
                ticket.progress(job.done_rows)
        self._settle(finished)

    def _settle(self, finished: list[Job]) -> None:
        for job in finished:
            ticket = self.tickets.pop(id(job), None)
            if ticket is None:
                continue
            if job.error is not None:
                ticket.resolve(error=job.error)
            else:
                ticket.resolve(job.results())
