"""Which rows go into the next pass: shortest remaining work first, with an age bound, packing the rest.

Policy, and why:
- The chunk's *leader* is the job with the fewest remaining rows (SRPT). Plans know their rows up front, so
  this is exact, and SRPT minimises mean latency: a one-row gradient request that arrives while a 256-step
  IG runs leads the very next chunk, so it waits at most one chunk. Among heavy jobs, the one closest to
  done finishes first instead of all of them finishing late (which round-robin would do).
- Starvation bound: a job that had work but got no rows for `age_limit` chunks in a row leads the next
  chunk, whatever its size. A stream of cheap requests cannot hold an expensive one back for more than
  `age_limit` chunks at a time.
- Packing: the rest of the chunk is filled with rows of the same kind of pass (same model, objective, and
  forward-only or forward+backward) from the leader's other groups, then from other jobs in priority order,
  whichever request or method they come from. Rows carry their own targets, so a cheap request usually rides
  along with an expensive one's chunk and costs it almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .jobs import Job, Slot
from .pacing import Pacer
from .plan import PassOutput, Scoring


@dataclass
class Chunk:
    module: nn.Module
    objective: Scoring
    parts: list[tuple[Job, Slot, int, int]]  # (job, slot, first row, end row)
    key: tuple = ()  # the kind of pass (pass_key): what its time per row is learnt for

    @property
    def size(self) -> int:
        return sum(stop - start for _, _, start, stop in self.parts)


def pass_key(job: Job, slot: Slot) -> tuple:
    rows = slot.rows  # attention capture makes a pass record autograd: such rows go together
    return (id(job.module), job.objective, rows.needs_backward, rows.guided, bool(rows.attention), rows.cached)


class Scheduler:
    """The active jobs of one device; pure bookkeeping, no device work (see executor.py)."""

    def __init__(self, age_limit: int = 4, pacer: Pacer | None = None):
        self.age_limit = age_limit
        self.pacer = pacer  # None: every pass takes the leader's capacity (engine.run, tests)
        self.jobs: list[Job] = []

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def remove(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)

    def next_chunk(self) -> Chunk | None:
        waiting = [job for job in self.jobs if job.pending_slots() and not job.finished]
        if not waiting:
            return None
        starved = [job for job in waiting if job.skipped >= self.age_limit]
        if starved:
            leader = min(starved, key=lambda job: job.arrival)
        else:
            leader = min(waiting, key=lambda job: (job.remaining, job.arrival))
        key = pass_key(leader, leader.pending_slots()[0])
        room = leader.capacity if self.pacer is None else self.paced_room(leader, waiting, key)
        parts: list[tuple[Job, Slot, int, int]] = []
        others = sorted((j for j in waiting if j is not leader), key=lambda job: (job.remaining, job.arrival))
        for job in [leader, *others]:
            for slot in job.pending_slots():
                if room == 0:
                    break
                if pass_key(job, slot) != key:
                    continue
                take = min(room, slot.pending)
                parts.append((job, slot, slot.handed, slot.handed + take))
                slot.handed += take
                room -= take
        included = {id(job) for job, _, _, _ in parts}
        for job in waiting:
            job.skipped = 0 if id(job) in included else job.skipped + 1
        return Chunk(leader.module, leader.objective, parts, key)

    def paced_room(self, leader: Job, waiting: list[Job], key: tuple) -> int:
        """Rows of a pass sized by time (pacing.py), with two exceptions for jobs the pass outlasts ("light":
        fewer rows left than the pass has):
        - led by a light job while a heavy one waits (a cheap request that came in during a long one), the pass
          takes the heavy rows only up to half a first pass's size, so the light job's answer waits for a short
          pass (with a whole first pass, 8 rows on the CPU, a gradient request during IG-256 waited 0.101-0.107
          of the IG request's time; bench/README.md);
        - when only light jobs wait (a burst of one-image requests), the pass takes all their rows, up to the
          capacity: nobody is behind them to protect, and large passes drain the queue fastest."""
        assert self.pacer is not None
        room = self.pacer.rows(key, leader.capacity)
        if leader.remaining >= room:
            return room
        compatible = [(job, slot) for job in waiting for slot in job.pending_slots() if pass_key(job, slot) == key]
        light = sum(slot.pending for job, slot in compatible if job.remaining < room)
        if all(job.remaining < room for job, _ in compatible):
            return min(leader.capacity, max(room, light))
        return min(room, max(light, self.pacer.first_rows // 2))

    def complete(self, chunk: Chunk, outputs: list[PassOutput]) -> list[Job]:
        """Hands each part its output; returns the jobs that finished (or failed) with this chunk."""
        for (job, slot, start, stop), out in zip(chunk.parts, outputs, strict=True):
            if job.error is not None:
                continue
            try:
                job.complete(slot, start, stop, out)
            except Exception as exc:  # a plan's own failure (e.g. an unusable layer) ends its job only
                job.error = exc
        return self.finished()

    def fail(self, chunk: Chunk, exc: BaseException) -> list[Job]:
        """The pass itself failed: every job in it gets the error."""
        for job, _, _, _ in chunk.parts:
            job.error = job.error or exc
        return self.finished()

    def finished(self) -> list[Job]:
        done = [job for job in self.jobs if job.finished]
        for job in done:
            self.jobs.remove(job)
        return done
