"""KV-cached generation (service/models/kv_cache.py): the same tokens and log-probabilities as recomputing
every sequence whole, with rows of several generations (at different steps, of different lengths) in one
pass; the cache lives and dies with its plan; cached rows never share a pass with other rows."""

from __future__ import annotations

import gc

import torch
from causal_lms import gpt2, tokenizer

from service.core.generation import Generation, generation_plan
from service.engine import plan as plans
from service.engine.executor import padded
from service.engine.inline import run
from service.engine.jobs import Job, Slot
from service.engine.policy import pass_key
from service.models import kv_cache
from service.models.causal_lm import CausalLM

MAX_LENGTH = 24
PROMPTS = ["the cat sat on the", "question : colour of the sky ? answer :", "a dog"]


def wrapped() -> CausalLM:
    return CausalLM(gpt2(), "transformer.wte", MAX_LENGTH)


def ids(texts: list[str]) -> list[list[int]]:
    return tokenizer()(texts)["input_ids"]


def generate(module: CausalLM, how: Generation, kv: bool, chunk_size: int = 64, budget: int = 2**30) -> list:
    # One plan per prompt, so that the passes mix rows of several stores at different steps.
    budget = budget if kv else 0
    built = [generation_plan(module, [p], how, eos=1, pad=0, kv_cache_bytes=budget) for p in ids(PROMPTS)]
    return [out[0] for out in run(module, built, chunk_size=chunk_size)]


def test_cached_generation_is_the_recomputed_one():
    module = wrapped()
    for how in (Generation(10, False, 1.0, 1.0, 0), Generation(10, True, 1.3, 0.9, 7)):
        cached, recomputed = generate(module, how, True), generate(module, how, False)
        for a, b in zip(cached, recomputed, strict=True):
            assert a.ids == b.ids and a.finish == b.finish
            torch.testing.assert_close(torch.tensor(a.log_probs), torch.tensor(b.log_probs), rtol=1e-5, atol=1e-6)
    # Passes of one row each give the same as passes holding every prompt's row.
    one_by_one = generate(module, Generation(10, True, 1.3, 0.9, 7), True, chunk_size=1)
    assert [c.ids for c in one_by_one] == [c.ids for c in cached]


def test_a_cache_over_its_budget_is_dropped_after_the_first_pass():
    """GPT-2 here: 2 layers x (keys + values) x 16 floats = 256 bytes a position."""
    module = wrapped()
    how = Generation(6, False, 1.0, 1.0, 0)
    (prompt,) = ids(PROMPTS[:1])
    for budget, cached_steps in ((256 * (len(prompt) + 6), 6), (256 * (len(prompt) + 6) - 1, 1)):
        plan = generation_plan(module, [prompt], how, eos=None, pad=0, kv_cache_bytes=budget)
        kinds = []
        rows = next(plan)
        try:
            while True:
                kinds.append(rows.cached)
                x, _ = rows.make(0, rows.count)
                with torch.inference_mode():
                    logits = module.cached(x) if rows.cached else module(x)
                rows.consume(0, rows.count, plans.PassOutput(logits, torch.zeros(1), torch.zeros(1)))
                rows = plan.send(None)
        except StopIteration as done:
            (continuation,) = done.value
        assert kinds == [True] * cached_steps + [False] * (6 - cached_steps)
        assert continuation.ids == generate(module, how, False)[0].ids


def test_a_pass_mixes_a_long_past_with_a_whole_new_prompt():
    """Row 0 has 22 tokens of past and one new; row 1 is a prompt of 12 at its first step: row 0's padding
    positions (22 + 11) would run past the model's 32 positions if they were not masked to position 0."""
    module = wrapped()
    cpu = torch.device("cpu")
    long = ids(["the cat sat on the mat under the tree the dog ran under a big tree on the mat the a cat sat"])[0]
    short = list(range(5, 17))
    assert (len(long), len(short)) == (23, 12)
    old, new = kv_cache.KVStore(), kv_cache.KVStore()
    with torch.inference_mode():
        module.cached(old.rows([0], [long[:-1]], cpu))  # its past
        both = torch.cat(padded([old.rows([0], [long[-1:]], cpu), new.rows([3], [short], cpu)], len(short)))
        out = module.next_token(module.cached(both))
        for row, sequence in enumerate((long, short)):
            expected = module.model(torch.tensor([sequence])).logits[0, -1].log_softmax(-1)
            torch.testing.assert_close(out[row], expected, rtol=1e-5, atol=1e-5)
    assert old.past[0][0][0].shape[1] == len(long) and new.past[3][0][0].shape[1] == len(short)


def test_the_cache_goes_with_its_plan():
    module = wrapped()
    before = len(kv_cache._stores)
    generate(module, Generation(6, False, 1.0, 1.0, 0), True)
    gc.collect()
    assert len(kv_cache._stores) == before
    # An abandoned generation (a dropped request) frees its cache too.
    plan = generation_plan(module, ids(PROMPTS[:1]), Generation(6, False, 1.0, 1.0, 0), 1, 0, 2**30)
    rows = next(plan)
    assert len(kv_cache._stores) == before + 1
    with torch.inference_mode():
        rows.consume(0, 1, plans.PassOutput(module.cached(rows.make(0, 1)[0]), torch.zeros(1), torch.zeros(1)))
    del plan, rows
    gc.collect()
    assert len(kv_cache._stores) == before


def test_cached_rows_never_share_a_pass_with_other_rows():
    module = wrapped()
    job = Job(module, [], "logit", capacity=8, total_rows=0)

    def rows(cached: bool) -> Slot:
        return Slot(
            plans.Rows(1, lambda a, b: (torch.zeros(1), torch.zeros(1)), lambda a, b, o: None, cached=cached), []
        )

    assert pass_key(job, rows(True)) != pass_key(job, rows(False))
