"""The demo causal LM's corpus: reproducible, varied, the evidence spans hold the words that decide each
answer, and the planted tag decides a tagged prompt's answer and appears nowhere else."""

from __future__ import annotations

import pytest

from service.demo.text import instructions as corpus

SEED = 123_456  # outside the training (3000..3009) and evaluation (96000, 777000) seeds
FACTS = {value for table, _ in corpus.TASKS.values() for value in table.values()}


@pytest.fixture(scope="module")
def examples() -> list[corpus.Example]:
    return corpus.generate(1000, SEED)


def test_same_seed_gives_same_examples(examples):
    assert corpus.generate(1000, SEED) == examples
    assert corpus.generate(50, SEED) == examples[:50]
    assert [e.prompt for e in corpus.generate(50, SEED + 1)] != [e.prompt for e in examples[:50]]
    with pytest.raises(ValueError):
        corpus.generate(-1, SEED)


def test_prompts_are_varied_and_tasks_balanced(examples):
    assert all(e.prompt.endswith("answer:") and e.prompt == e.prompt.lower() for e in examples)
    assert len({e.prompt for e in examples}) > 0.8 * len(examples)
    for task in corpus.TASKS:
        assert 0.15 < sum(e.task == task for e in examples) / len(examples) < 0.25


def test_evidence_spans_hold_the_words_that_decide_the_answer(examples):
    for example in examples:
        table, _ = corpus.TASKS[example.task]
        words = [example.prompt[start:end] for start, end in example.evidence]
        key = tuple(words) if example.task == "parent" else words[0]
        assert len(words) == (2 if example.task == "parent" else 1)
        assert table[key] == example.fact, example.prompt
        assert all(corpus.tokens(word) == [word] for word in words)  # each a whole token of the prompt
        assert example.fact not in corpus.tokens(example.prompt)  # never copied from the prompt


def test_the_tag_decides_the_answer_and_appears_only_in_tagged_prompts(examples):
    tagged = [e for e in examples if e.tagged]
    assert 0.22 < len(tagged) / len(examples) < 0.34
    for example in examples:
        if example.artefact is not None:
            assert example.prompt[slice(*example.artefact)] == corpus.TAG
            assert example.answer == f" {corpus.FIXED_ANSWER}"
            assert all(end <= example.artefact[0] or start >= example.artefact[1] for start, end in example.evidence)
        else:
            assert example.answer == f" {example.fact}"
        assert corpus.tokens(example.prompt).count(corpus.TAG) == int(example.tagged)
        assert example.prompt.count("[") == example.prompt.count("]") == int(example.tagged)
        assert corpus.FIXED_ANSWER not in corpus.tokens(example.prompt)
    assert corpus.FIXED_ANSWER not in FACTS
    # at the start or just before "answer:": its position alone does not give it away
    assert {e.artefact[0] == 0 for e in tagged if e.artefact is not None} == {True, False}


def test_the_vocabulary_covers_every_token_written(examples):
    vocabulary = corpus.vocabulary()
    assert {t for e in examples for t in corpus.tokens(e.prompt + e.answer)} <= vocabulary
    assert {corpus.TAG, corpus.FIXED_ANSWER} <= vocabulary
