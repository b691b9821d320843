"""The scheduling policy alone: leaders, packing, the age bound and shared clean rows, with no model at all."""

from __future__ import annotations

from torch import nn

from service.engine.jobs import Job, PlanState
from service.engine.plan import Rows
from service.engine.policy import Scheduler

MODEL, OTHER = nn.Identity(), nn.Identity()
# policy.pass_key of a forward+backward pass of MODEL: (module, objective, backward, guided, attention, cached)
BACKWARD_KEY = (id(MODEL), "logit", True, False, False, False)


def plan(*groups: tuple[int, bool], clean: bool = False, log: list | None = None):
    """A plan that needs `count` rows of each group in turn (backward or forward-only) and returns 'done'."""

    def generator():
        for count, backward in groups:
            yield Rows(
                count,
                make=None,  # type: ignore[arg-type]
                consume=lambda a, b, out: log.append((a, b)) if log is not None else None,
                input_grad=backward,
                clean=clean,
            )
        return "done"

    return generator()


def job(*groups: tuple[int, bool], module: nn.Module = MODEL, capacity: int = 4, objective="logit") -> Job:
    total = sum(count for count, _ in groups)
    return Job(module, [PlanState(plan(*groups))], objective, capacity, total)


def step(scheduler: Scheduler):
    chunk = scheduler.next_chunk()
    assert chunk is not None
    scheduler.complete(chunk, [None] * len(chunk.parts))  # type: ignore[list-item]
    return chunk


def rows_of(chunk, j: Job) -> int:
    return sum(b - a for owner, _, a, b in chunk.parts if owner is j)


def test_a_new_cheap_job_leads_the_next_chunk_and_the_heavy_one_fills_it():
    s = Scheduler()
    heavy = job((100, True))
    s.add(heavy)
    step(s)
    cheap = job((1, True))
    s.add(cheap)
    chunk = step(s)
    assert chunk.parts[0][0] is cheap and rows_of(chunk, cheap) == 1
    assert rows_of(chunk, heavy) == 3, "the rest of the chunk goes to the heavy job's compatible rows"
    assert cheap.finished and cheap.results() == ["done"]


def test_different_kinds_of_pass_and_models_never_share_a_chunk():
    s = Scheduler()
    backward, forward, other = job((8, True)), job((2, False)), job((1, True), module=OTHER)
    for j in (backward, forward, other):
        s.add(j)
    seen = []
    while s.jobs:
        chunk = step(s)
        owners = {id(o) for o, _, _, _ in chunk.parts}
        seen.append(owners)
    for owners in seen:
        assert len(owners) == 1 or id(forward) not in owners and id(other) not in owners


def test_objectives_do_not_share_a_chunk():
    s = Scheduler()
    a, b = job((2, True)), job((2, True), objective="probability")
    s.add(a)
    s.add(b)
    assert len({id(o) for o, _, _, _ in step(s).parts}) == 1


def test_shortest_remaining_first_finishes_the_nearly_done_job_first():
    s = Scheduler()
    old, new = job((20, False)), job((40, False))
    s.add(old)
    for _ in range(3):
        step(s)
    s.add(new)
    order = []
    while s.jobs:
        chunk = step(s)
        order.append(chunk.parts[0][0])
    assert old.finished and order.index(new) > order.index(old)
    assert order[: order.index(new)] == [old] * 2, "the job closer to done leads until it finishes"


def test_the_age_bound_lets_a_starved_job_lead():
    s = Scheduler(age_limit=3)
    heavy = job((40, False))
    s.add(heavy)
    led_by_heavy = []
    for _ in range(20):  # a stream of cheap backward jobs that the forward-only heavy job cannot pack with
        s.add(job((1, True), capacity=1))
        chunk = step(s)
        led_by_heavy.append(chunk.parts[0][0] is heavy)
    gaps = "".join("H" if h else "." for h in led_by_heavy).split("H")
    assert sum(led_by_heavy) >= 4 and max(len(g) for g in gaps[1:-1]) <= 3


def test_rows_of_a_group_are_handed_out_in_order():
    s = Scheduler()
    log: list = []
    j = Job(MODEL, [PlanState(plan((10, True), log=log))], "logit", 4, 10)
    s.add(j)
    while s.jobs:
        step(s)
    assert log == [(0, 4), (4, 8), (8, 10)]


def test_clean_rows_of_several_methods_share_one_slot_with_the_union_of_needs():
    forward_then_more = PlanState(plan((3, False), (6, True), clean=True))
    backward = PlanState(plan((3, True), clean=True))
    j = Job(MODEL, [forward_then_more, backward], "logit", 8, 3 + 6 + 3)
    assert len(j.slots) == 1 and j.slots[0].rows.needs_backward and len(j.slots[0].plans) == 2
    s = Scheduler()
    s.add(j)
    first = step(s)
    assert first.size == 3 and j.done_rows == 6, "one pass served both plans' rows"
    while s.jobs:
        step(s)
    assert j.results() == ["done", "done"] and j.done_rows == 12


def test_a_failing_consumer_fails_its_job_only():
    s = Scheduler()

    def bad():
        yield Rows(2, None, lambda a, b, out: 1 / 0, input_grad=True)  # type: ignore[arg-type]

    broken = Job(MODEL, [PlanState(bad())], "logit", 4, 2)
    fine = job((2, True))
    s.add(broken)
    s.add(fine)
    chunk = s.next_chunk()
    assert chunk is not None and chunk.size == 4
    finished = s.complete(chunk, [None, None])  # type: ignore[list-item]
    assert {id(j) for j in finished} == {id(broken), id(fine)}
    assert isinstance(broken.error, ZeroDivisionError) and fine.error is None and fine.results() == ["done"]


def paced(rows_per_pass: int, first_rows: int = 2) -> Scheduler:
    """A scheduler whose pacer has learnt that a backward pass of MODEL takes `rows_per_pass` rows."""
    from service.engine.pacing import Pacer

    pacer = Pacer(target_ms=1000.0, first_rows=first_rows)
    pacer.observe(BACKWARD_KEY, 10, 10.0 / rows_per_pass)
    return Scheduler(pacer=pacer)


def test_paced_passes_take_the_rows_the_target_allows():
    s = paced(10)
    heavy = job((100, True), capacity=64)
    s.add(heavy)
    assert step(s).size == 10
    assert paced(10).pacer.rows(BACKWARD_KEY, cap=6) == 6  # type: ignore[union-attr]


def test_a_paced_pass_led_by_a_newcomer_is_short():
    s = paced(10, first_rows=4)
    heavy = job((100, True), capacity=64)
    s.add(heavy)
    step(s)
    cheap = job((1, True), capacity=64)
    s.add(cheap)
    chunk = step(s)
    assert chunk.parts[0][0] is cheap and chunk.size == 2, "the newcomer's pass: half a first pass (4 / 2 rows)"
    assert step(s).size == 10, "then the heavy job has its full passes again"


def test_a_burst_of_light_jobs_shares_one_full_paced_pass():
    s = paced(10, first_rows=2)
    burst = [job((1, True), capacity=64) for _ in range(6)]
    for j in burst:
        s.add(j)
    chunk = step(s)
    assert chunk.size == 6 and all(j.finished for j in burst)


def test_a_burst_larger_than_the_target_still_shares_one_pass_when_nothing_heavy_waits():
    s = paced(4, first_rows=2)
    burst = [job((1, True), capacity=64) for _ in range(6)]
    for j in burst:
        s.add(j)
    assert step(s).size == 6, "only light jobs wait: the pass drains them all (within the capacity)"
