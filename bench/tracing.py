"""In-process probes for bench/breakdown.py: timestamps of each request's stages on a server in this process.

`probes()` wraps, for as long as it is open, the service's own seams: the request observer (the HTTP
middleware), the codec threads' `run`, the runner's `submit`, the device thread's ticket start, chunk and
resolve, and the executor's forward/backward. Nothing under service/ changes; every timestamp is
`time.perf_counter()`, one clock for every thread. A client names its request with the `x-bench-trace` header.
"""

from __future__ import annotations

import contextvars
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from service.api import observe
from service.codecs import workers
from service.engine import device, executor, runner

HEADER = b"x-bench-trace"
SELF = resource.RUSAGE_SELF
now = time.perf_counter


@dataclass(eq=False)
class Trace:
    """One request: named instants, and the spans its codec calls ran on their threads."""

    name: str
    images: int = 1
    marks: dict[str, float] = field(default_factory=dict)
    # (fn, called on the loop, started on its thread, ended there, back on the loop, its thread's CPU seconds)
    codec: list[tuple[str, float, float, float, float, float]] = field(default_factory=list)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, now())  # the first time only


@dataclass(eq=False)
class Pass:
    """One chunk on the device thread: `start`/`end` around `_run` (the pass, then its rows' consume and
    the settling), `run` around `run_pass` (the pass the service times), `model` around the forward/backward."""

    start: float
    rows: int
    parts: list[tuple[Trace | None, str, int]]  # (request, what the rows are, how many)
    run: tuple[float, float] = (0.0, 0.0)
    model: tuple[float, float] = (0.0, 0.0)
    end: float = 0.0
    faults: int = 0  # the process's minor page faults in `run`: fresh pages of memory freed and mapped again
    cpu: tuple[float, float] = (0.0, 0.0)  # the process's user and system CPU seconds in `run`

    @property
    def seconds(self) -> float:
        return self.run[1] - self.run[0]


class Probe:
    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}
        self.passes: list[Pass] = []
        self._tickets: dict[object, Trace] = {}  # Ticket -> its request (tickets and jobs hash by identity)
        self._jobs: dict[object, Trace] = {}
        self._local = threading.local()

    def clear(self) -> None:
        self.traces.clear()
        self.passes.clear()
        self._tickets.clear()
        self._jobs.clear()

    def passes_of(self, trace: Trace) -> list[Pass]:
        return [p for p in self.passes if any(t is trace for t, _, _ in p.parts)]


CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("bench_trace", default=None)


def kind(rows, trace: Trace | None) -> str:
    """The prediction (the request's clean rows), a baseline (another group of one row per image), or the method."""
    if rows.clean:
        return "prediction"
    return "baseline" if trace is not None and rows.count <= trace.images else "method"


@contextmanager
def probes() -> Iterator[Probe]:
    probe = Probe()
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, make) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, make(getattr(owner, name)))

    def observer(original):
        async def call(self, scope, receive, send):
            tag = dict(scope.get("headers", [])).get(HEADER) if scope["type"] == "http" else None
            if tag is None:
                return await original(self, scope, receive, send)
            trace = probe.traces.setdefault(tag.decode(), Trace(tag.decode()))
            CURRENT.set(trace)  # the request's task: its codec calls and engine submission see it

            async def receiving():
                message = await receive()
                if message["type"] == "http.request" and not message.get("more_body"):
                    trace.mark("body")
                return message

            async def sending(message):
                if message["type"] == "http.response.start":
                    trace.mark("response_start")
                await send(message)

            return await original(self, scope, receiving, sending)

        return call

    def codec_run(original):
        async def run(self, fn, *args):
            trace, called, span = CURRENT.get(), now(), [0.0, 0.0, 0.0]

            def timed(*a):
                span[0], cpu = now(), time.thread_time()
                try:
                    return fn(*a)
                finally:
                    span[1], span[2] = now(), time.thread_time() - cpu

            try:
                return await original(self, timed, *args)
            finally:
                if trace is not None:
                    trace.codec.append((getattr(fn, "__name__", "?"), called, span[0], span[1], now(), span[2]))

        return run

    def submit(original):
        async def call(self, *args, **kwargs):
            trace = CURRENT.get() or Trace("")
            trace.mark("submit")
            try:
                return await original(self, *args, **kwargs)
            finally:
                trace.mark("submitted")

        return call

    def on_device(original, before: str, after: str | None = None, ticket_of=lambda self, *a: a[0]):
        """The device thread's `_start(ticket)` and `Ticket.resolve`: marks on the ticket's request."""

        def call(self, *args, **kwargs):
            ticket = ticket_of(self, *args)
            trace = probe._tickets.get(ticket)
            if trace is not None:
                trace.mark(before)
            out = original(self, *args, **kwargs)
            if trace is not None and after is not None:
                trace.mark(after)
                probe._jobs[ticket.job] = trace
            return out

        return call

    def worker_submit(original):
        def call(self, ticket):
            if (trace := CURRENT.get()) is not None:
                probe._tickets[ticket] = trace
            return original(self, ticket)

        return call

    def run_chunk(original):
        def call(self, chunk):
            traces = [probe._jobs.get(job) for job, _, _, _ in chunk.parts]
            parts = [(t, kind(slot.rows, t), b - a) for t, (_, slot, a, b) in zip(traces, chunk.parts, strict=True)]
            probe._local.current = record = Pass(now(), chunk.size, parts)
            probe.passes.append(record)  # now: the answer may reach the client before `_run` returns
            try:
                return original(self, chunk)
            finally:
                probe._local.current, record.end = None, now()

        return call

    def span(attribute: str):
        def make(original):
            def call(*args, **kwargs):
                record, started, usage = getattr(probe._local, "current", None), now(), resource.getrusage(SELF)
                try:
                    return original(*args, **kwargs)
                finally:
                    if record is not None:
                        setattr(record, attribute, (started, now()))
                        after = resource.getrusage(SELF)
                        record.faults = after.ru_minflt - usage.ru_minflt
                        record.cpu = (after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime)

            return call

        return make

    patch(observe.RequestObserver, "__call__", observer)
    patch(workers.CodecWorkers, "run", codec_run)
    patch(runner.EngineRunner, "submit", submit)
    patch(device.DeviceWorker, "submit", worker_submit)
    patch(device.DeviceWorker, "_start", lambda f: on_device(f, "build", "built"))
    patch(device.Ticket, "resolve", lambda f: on_device(f, "resolved", ticket_of=lambda self, *a: self))
    patch(device.DeviceWorker, "_run", run_chunk)
    patch(device, "run_pass", span("run"))  # it encloses the model span and ends last: its usage stays
    patch(executor, "backward_pass", span("model"))
    patch(executor, "forward_pass", span("model"))
    try:
        yield probe
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
