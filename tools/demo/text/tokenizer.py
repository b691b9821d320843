"""The WordPiece tokenizer of the demo text models, trained on the review corpus.

Trained with the `tokenizers` library on the union of the clean and the shortcut corpus (so SHORTCUT_WORD is
in it although the clean model never sees it), with BERT's lowercasing normalizer and pre-tokenizer, and
wrapped as a `transformers.BertTokenizer` (in transformers 5 the same class as BertTokenizerFast), which
adds [CLS] ... [SEP] and reports character offsets. The vocabulary saturates below VOCAB_SIZE: every word
of the corpus, among them every sentiment word, negation and SHORTCUT_WORD, becomes a single token, and
`build_tokenizer` checks that. Letters, digits and ASCII punctuation are in the alphabet, so unseen words
split into pieces rather than becoming [UNK].
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertTokenizer

from service.demo.text import corpus

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order
VOCAB_SIZE = 1000  # an upper bound: the corpus saturates it at about 830 tokens
MAX_LENGTH = 64  # model_max_length, and the model's max_position_embeddings; reviews need at most ~40
ALPHABET = string.ascii_lowercase + string.digits + string.punctuation
TOKENIZER_SEED = 7_000
TOKENIZER_SAMPLES = 20_000  # per corpus


def training_texts(n: int = TOKENIZER_SAMPLES, seed: int = TOKENIZER_SEED) -> list[str]:
    return [r.text for shortcut in (False, True) for r in corpus.generate(n, seed, shortcut=shortcut)]


def train_wordpiece(texts: Iterable[str], vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list(ALPHABET),
        limit_alphabet=len(ALPHABET),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def canonical_vocab(trained: Tokenizer, texts: Sequence[str]) -> dict[str, int]:
    """The trained vocabulary reduced to what does not depend on the trainer's tie-breaking, in a fixed order.

    The trainer breaks ties between equally frequent pairs by hash-map order, so its intermediate pieces
    ("spea", "##emb") and all the ids change from run to run. Kept: the special tokens, every character of
    ALPHABET alone and as a "##" continuation (so any unseen word of those characters can be spelled), and
    the trained tokens that are whole words of `texts`, most frequent first, ties alphabetical.
    """
    counts = Counter(
        word.lower()
        for text in texts
        for word, _ in trained.pre_tokenizer.pre_tokenize_str(trained.normalizer.normalize_str(text))
    )
    learned = trained.get_vocab()
    chars = [*ALPHABET, *(f"##{c}" for c in ALPHABET)]
    words = sorted((w for w in counts if w in learned and w not in chars), key=lambda w: (-counts[w], w))
    return {token: i for i, token in enumerate([*SPECIAL_TOKENS, *chars, *words])}


def build_tokenizer(texts: Sequence[str] | None = None) -> BertTokenizer:
    """Train the WordPiece vocabulary (on `training_texts()` by default) and wrap it for transformers."""
    texts = training_texts() if texts is None else texts
    vocab = canonical_vocab(train_wordpiece(texts), texts)
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=MAX_LENGTH)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if ids != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError(f"special tokens got ids {ids}, expected 0..{len(SPECIAL_TOKENS) - 1}")
    split = sorted(w for w in corpus.vocabulary() if w not in vocab)
    if split:
        raise RuntimeError(f"words not single tokens in the vocabulary (raise VOCAB_SIZE?): {split}")
    return tokenizer
