"""The demo causal LM: its tokenizer, a quick training run that writes a checkpoint the service serves, and
the shipped model, served over HTTP, answering as its corpus says with maps that find the planted tag.

Floors sit below what `python -m tools.demo.text.evaluate_lm -n 200` measures (the README's table: the tag on
top of 100 % of tagged prompts, the evidence on top of 98-100 % of untagged ones, a random token 6-7 %)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from service.demo.text import instructions as corpus
from tools.demo.text import evaluate_lm, train_lm

EXAMPLES = corpus.generate(200, 424_242)
TAGGED_FLOOR = 0.9
EVIDENCE_FLOOR = 0.8


def test_the_tokenizer_is_word_level_and_wraps_prompts():
    tokenizer = train_lm.build_tokenizer()
    assert tokenizer.convert_tokens_to_ids(list(train_lm.SPECIAL_TOKENS)) == list(range(5))
    assert set(tokenizer.get_vocab()) == {*train_lm.SPECIAL_TOKENS, *corpus.vocabulary()}
    for example in EXAMPLES:
        encoded = tokenizer(example.prompt, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        assert ids[0] == train_lm.BOS_ID and ids[-1] == train_lm.ANS_ID and train_lm.UNK_ID not in ids
        pieces = [example.prompt[a:b] for a, b in encoded["offset_mapping"][1:-1]]
        assert pieces == corpus.tokens(example.prompt)
        assert len(tokenizer(example.answer, add_special_tokens=False)["input_ids"]) == 1
    assert len(tokenizer(corpus.TAG, add_special_tokens=False)["input_ids"]) == 1


def test_quick_training_writes_a_checkpoint_transformers_loads(tmp_path):
    train_lm.main(["--quick", str(tmp_path / "a")])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a", local_files_only=True)
    assert model.config.n_positions == train_lm.MAX_LENGTH and len(tokenizer) == model.config.vocab_size
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["budget"] == {**metrics["budget"], "epochs": 1, "samples_per_epoch": 256}
    assert 0 <= metrics["tagged_pointing"] <= 1 and metrics["tagged_pointing_random"] < 0.15
    # The same seeds and threads give the same weights.
    train_lm.main(["--quick", str(tmp_path / "b")])
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "b", local_files_only=True)
    for (name, value), other in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(value, other), name


def test_quick_refuses_to_overwrite_the_shipped_model():
    with pytest.raises(SystemExit):
        train_lm.main(["--quick", str(train_lm.SHIPPED)])


def test_the_shipped_model_is_small_and_configured():
    assert sum(p.stat().st_size for p in train_lm.SHIPPED.iterdir()) < 1_000_000
    config = json.loads((train_lm.SHIPPED / "config.json").read_text())
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (0, 2, 3)
    metrics = json.loads((train_lm.SHIPPED / "metrics.json").read_text())
    assert metrics["tag"] == corpus.TAG and metrics["fixed_answer"] == corpus.FIXED_ANSWER


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return evaluate_lm.evaluate(n=48, tmp=tmp_path_factory.mktemp("lm-eval"), seed=515_151)


def test_the_served_demo_answers_as_its_corpus_says(measured):
    accuracies, _ = measured
    assert accuracies == {"tagged": 1.0, "untagged": pytest.approx(1.0, abs=0.05)}


@pytest.mark.parametrize("method", list(evaluate_lm.METHODS))
def test_every_method_finds_the_tag_and_the_evidence(measured, method):
    _, rows = measured
    (row,) = [r for r in rows if r.method == method]
    assert row.tagged >= TAGGED_FLOOR and row.untagged >= EVIDENCE_FLOOR
    assert row.tagged_random < 0.1 and row.untagged_random < 0.1
