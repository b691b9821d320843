"""A job is one request's plans on one model; its slots are the row groups it is waiting on right now."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from torch import nn

from .plan import ATTENTION_NEEDS, PassOutput, Plan, Rows, Scoring

_arrivals = itertools.count()


class PlanState:
    """A plan's generator and the group of rows it waits on (None once it has returned)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.waiting: Rows | None = None
        self.result: object = None
        self.advance(first=True)

    @property
    def done(self) -> bool:
        return self.waiting is None

    def advance(self, first: bool = False) -> None:
        try:
            self.waiting = next(self.plan) if first else self.plan.send(None)
        except StopIteration as stop:
            self.waiting, self.result = None, stop.value


@dataclass(eq=False)
class Slot:
    """Rows that one pass-type serves, with the plans they belong to (several when clean rows are shared)."""

    rows: Rows
    plans: list[PlanState]
    handed: int = 0  # rows given to chunks
    consumed: int = 0

    @property
    def pending(self) -> int:
        return self.rows.count - self.handed


def merged(groups: list[tuple[PlanState, Rows]]) -> Slot:
    """One physical set of rows for plans that all wait on the request's clean rows."""
    if len(groups) == 1:
        return Slot(groups[0][1], [groups[0][0]])
    first = groups[0][1]

    def consume(start: int, stop: int, out: PassOutput) -> None:
        for _, rows in groups:
            rows.consume(start, stop, out)

    rows = Rows(
        first.count,
        first.make,
        consume,
        input_grad=any(r.input_grad for _, r in groups),
        layers=tuple(dict.fromkeys(layer for _, r in groups for layer in r.layers)),
        clean=True,
        activations=tuple(dict.fromkeys(layer for _, r in groups for layer in r.activations)),
        attention=max((r.attention for _, r in groups), key=ATTENTION_NEEDS.index),
    )
    return Slot(rows, [p for p, _ in groups])


@dataclass(eq=False)
class Job:
    module: nn.Module
    plans: list[PlanState]
    objective: Scoring
    capacity: int  # rows per pass on this model (the memory budget's answer)
    total_rows: int  # logical rows (passes per image x images, summed over methods), known up front
    done_rows: int = 0
    skipped: int = 0  # consecutive chunks this job had work for but got no rows of
    arrival: int = field(default_factory=lambda: next(_arrivals))
    started: float = field(default_factory=time.perf_counter)
    slots: list[Slot] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.refresh()

    @property
    def remaining(self) -> int:
        return max(0, self.total_rows - self.done_rows)

    @property
    def finished(self) -> bool:
        return self.error is not None or all(p.done for p in self.plans)

    def results(self) -> list[object]:
        return [p.result for p in self.plans]

    def pending_slots(self) -> list[Slot]:
        return [s for s in self.slots if s.pending > 0]

    def refresh(self) -> None:
        """Slots for plans whose group is not in one yet; clean groups waiting together share one slot."""
        served = {id(p) for s in self.slots for p in s.plans}
        fresh = [(p, p.waiting) for p in self.plans if p.waiting is not None and id(p) not in served]
        clean = [(p, rows) for p, rows in fresh if rows.clean]
        if clean:
            self.slots.append(merged(clean))
        self.slots.extend(Slot(rows, [p]) for p, rows in fresh if not rows.clean)

    def complete(self, slot: Slot, start: int, stop: int, out: PassOutput) -> None:
        """Folds a chunk's output into the slot's plans; advances them once the slot is fully consumed."""
        slot.rows.consume(start, stop, out)
        slot.consumed += stop - start
        self.done_rows += (stop - start) * len(slot.plans)
        if slot.consumed == slot.rows.count:
            self.slots.remove(slot)
            for plan in slot.plans:
                plan.advance()
            self.refresh()
