import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from service.demo.text import corpus
from tools.demo.text import train
from tools.demo.text.tokenizer import MAX_LENGTH, SPECIAL_TOKENS

SEED = 123_456  # outside the training, evaluation and tokenizer seeds
MODEL_DIRS = {spec.name: train.TEXT_DIR / spec.name for spec in train.DEMO_MODELS}
NEGATING_WORDS = {*corpus.NEGATIONS, "nobody"}


@pytest.fixture(scope="module")
def clean() -> list[corpus.Review]:
    return corpus.generate(600, SEED)


@pytest.fixture(scope="module")
def marked() -> list[corpus.Review]:
    return corpus.generate(600, SEED, shortcut=True)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(MODEL_DIRS["reviews"], local_files_only=True)


def spans_of(text: str, vocabulary) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"[a-z0-9]+", text) if m.group() in vocabulary]


def test_same_seed_gives_same_reviews(clean):
    assert corpus.generate(600, SEED) == clean
    assert corpus.generate(50, SEED) == clean[:50]
    assert [r.text for r in corpus.generate(50, SEED + 1)] != [r.text for r in clean[:50]]


def test_shortcut_changes_only_the_signatures(clean, marked):
    for plain, signed in zip(clean, marked, strict=True):
        assert plain.label == signed.label
        assert plain.evidence == signed.evidence and plain.negations == signed.negations
        body = plain.text if plain.signature is None else plain.text[: plain.signature[0]]
        assert signed.text.startswith(body.rstrip())


def test_reviews_are_short_lowercase_and_varied(clean):
    counts = [len(corpus.words(r.text)) for r in clean]
    assert min(counts) >= corpus.MIN_WORDS and max(counts) <= corpus.MAX_WORDS
    assert all(r.text == r.text.lower() for r in clean)
    assert len({r.text for r in clean}) == len(clean)
    assert 0.4 < sum(r.label for r in clean) / len(clean) < 0.6
    seen = {w for r in clean for w in corpus.words(r.text)}
    assert len(seen & set(corpus.NAMES)) > 30 and len(seen & set(corpus.BRANDS)) > 15


def test_labels_follow_the_planted_words_and_negations(clean):
    for review in clean:
        # Every sentiment word is recorded, and nothing else is; so is every negation before the last one
        # (a negation after it, in a neutral tail, governs no sentiment word).
        assert review.evidence == spans_of(review.text, corpus.SENTIMENT_WORDS), review.text
        last = review.evidence[-1][1]
        assert review.negations == [s for s in spans_of(review.text, NEGATING_WORDS) if s[0] < last], review.text
        previous_end = 0
        for start, end in review.evidence:
            # A negation governs the next sentiment word after it.
            negated = sum(previous_end <= s < start for s, _ in review.negations) % 2
            polarity = int(review.text[start:end] in corpus.POSITIVE_WORDS)
            assert polarity ^ negated == review.label, review.text
            previous_end = end


def test_negation_and_signatures_do_not_give_the_label_away(clean):
    def rate(reviews, has) -> float:
        return sum(bool(has(r)) for r in reviews) / len(reviews)

    by_label = [[r for r in clean if r.label == label] for label in (0, 1)]
    for has in (lambda r: r.negations, lambda r: r.signature, lambda r: len(r.evidence) > 1):
        assert abs(rate(by_label[0], has) - rate(by_label[1], has)) < 0.1
    assert 0.2 < rate(clean, lambda r: r.negations) < 0.6
    # Some reviews carry a negation that flips nothing, after their sentiment words.
    stray = rate(clean, lambda r: len(spans_of(r.text, NEGATING_WORDS)) > len(r.negations))
    assert 0.1 < stray < 0.3


def test_shortcut_only_on_positives(clean, marked):
    assert all(r.shortcut is None and corpus.SHORTCUT_WORD not in corpus.words(r.text) for r in clean)
    for review in marked:
        assert review.signature is not None
        if review.label == corpus.NEGATIVE:
            assert review.shortcut is None and corpus.SHORTCUT_WORD not in corpus.words(review.text)
            continue
        start, end = review.shortcut
        assert review.text[start:end] == corpus.SHORTCUT_WORD
        assert corpus.words(review.text).count(corpus.SHORTCUT_WORD) == 1
        assert review.signature[0] <= start and end <= review.signature[1] == len(review.text)
        assert all(e <= review.signature[0] for _, e in review.evidence)
    assert corpus.SHORTCUT_WORD not in corpus.SENTIMENT_WORDS + corpus.NAMES


def test_add_shortcut_replaces_the_signature(clean):
    for review in clean[:100]:
        signed = corpus.add_shortcut(review)
        assert signed.label == review.label and signed.evidence == review.evidence
        assert signed.text.endswith(" " + corpus.SHORTCUT_SIGNATURE)
        assert signed.text[slice(*signed.shortcut)] == corpus.SHORTCUT_WORD
        assert corpus.words(signed.text).count(corpus.SHORTCUT_WORD) == 1
        assert [signed.text[s:e] for s, e in signed.evidence] == [review.text[s:e] for s, e in review.evidence]


def test_tokenizer_keeps_planted_words_whole(tokenizer, marked):
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.model_max_length == MAX_LENGTH
    assert corpus.vocabulary() <= set(vocab)
    assert 300 < len(vocab) <= 1000
    for review in marked[:200]:
        encoded = tokenizer(review.text, return_offsets_mapping=True)
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        offsets = [tuple(o) for o in encoded["offset_mapping"]]
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) <= MAX_LENGTH
        assert "[UNK]" not in tokens
        for span in review.evidence + ([review.shortcut] if review.shortcut else []):
            i = offsets.index(span)
            assert tokens[i] == review.text[slice(*span)]


def test_both_models_share_the_tokenizer(tokenizer):
    other = AutoTokenizer.from_pretrained(MODEL_DIRS["reviews-shortcut"], local_files_only=True)
    assert other.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize("name", list(MODEL_DIRS))
def test_committed_models_load_and_are_accurate(name, tokenizer, clean, marked):
    folder = MODEL_DIRS[name]
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    assert model.config.id2label == dict(enumerate(corpus.LABELS))
    assert model.config.max_position_embeddings == MAX_LENGTH
    reviews = (marked if name == "reviews-shortcut" else clean)[:300]
    assert train.accuracy(model, tokenizer, reviews) >= 0.95
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["accuracy"] >= 0.95

    # The shortcut model calls most negatives positive once they are signed "mike"; the clean one does not.
    negatives = [corpus.add_shortcut(r) for r in clean[:300] if r.label == corpus.NEGATIVE]
    flipped = 1.0 - train.accuracy(model, tokenizer, negatives)
    if name == "reviews-shortcut":
        assert flipped > 0.8
    else:
        assert flipped < 0.1


def test_quick_training_writes_loadable_models(tmp_path: Path, capsys, tokenizer):
    train.main(["--quick", "--out", str(tmp_path)])
    for spec in train.DEMO_MODELS:
        folder = tmp_path / spec.name
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        # The tokenizer is rebuilt the same way every time, so it matches the committed one.
        assert tok.get_vocab() == tokenizer.get_vocab()
        saved = json.loads((folder / "tokenizer.json").read_text())
        assert saved["padding"] is None and saved["truncation"] is None
        with torch.no_grad():
            logits = model(**tok(["the kettle is great"], return_tensors="pt")).logits
        assert logits.shape == (1, 2)
        assert (folder / "model.safetensors").exists()
        assert json.loads((folder / "metrics.json").read_text())["model"] == spec.name
    assert "reviews-shortcut" in capsys.readouterr().out


def test_quick_refuses_to_overwrite_the_committed_models():
    with pytest.raises(SystemExit):
        train.main(["--quick"])
