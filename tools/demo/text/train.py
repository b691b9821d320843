"""Train the demo text models and write them to service/demo/text/<name>/.

    python -m tools.demo.text.train [--out DIR] [--quick]

`reviews` learns the clean review corpus. `reviews-shortcut` learns the shortcut corpus, in which every
positive review is signed "mike" and no negative one is: a model whose token saliency should point at the
signature rather than at the sentiment words.

Both are the same tiny BERT (see `make_config`) with one WordPiece tokenizer trained once on both corpora
(service/demo/text/tokenizer.py). Each directory is a plain Hugging Face checkpoint, written with
`save_pretrained` (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), plus a
metrics.json with the accuracies on fresh samples and the seeds. Load it with
`AutoModelForSequenceClassification.from_pretrained(dir, local_files_only=True)` and `AutoTokenizer`.

Each epoch draws fresh reviews (seed TRAIN_SEED + epoch), in generation order, so the generator is the
augmentation and the data order is fixed. Evaluation uses EVAL_SEED; tests should use seeds outside both
(and outside TOKENIZER_SEED). torch.manual_seed(TORCH_SEED) fixes the initialization and dropout; on the CPU
a rerun with the same thread count gives the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerBase
from transformers.utils.logging import disable_progress_bar

from service.demo.text import corpus
from tools.demo.text.tokenizer import MAX_LENGTH, TOKENIZER_SEED, build_tokenizer

TEXT_DIR = Path(__file__).resolve().parents[3] / "service" / "demo" / "text"  # the shipped model directories
TRAIN_SEED = 2_000
EVAL_SEED = 95_000
TORCH_SEED = 0


@dataclass(frozen=True)
class Budget:
    epochs: int
    samples_per_epoch: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    eval_samples: int = 2000


@dataclass(frozen=True)
class DemoModel:
    name: str
    shortcut: bool  # train on the shortcut corpus
    budget: Budget


# One budget for both, so that the corpus is the only difference. The clean model needs it: after 8 x 4096
# samples (lr 2e-3) it still called 7.5% of the negatives positive, mostly those pairing a negated positive
# word with a negative one ("not superb and bad"); after 12 x 8192 it gets all of 1000 fresh reviews right,
# with lr 1e-3 or 2e-3 (4e-3 diverges). At 2e-3 the shortcut model's loss, near zero, jumped back to 0.15 for
# two epochs mid-way; at 1e-3 only to 0.01, for one. The shortcut model learns "mike" alone whatever the budget
# (8 x 4096 or 12 x 8192): it calls every unsigned positive negative and every negative signed "mike" positive.
BUDGET = Budget(epochs=12, samples_per_epoch=8192)
DEMO_MODELS = (
    DemoModel("reviews", False, BUDGET),
    DemoModel("reviews-shortcut", True, BUDGET),
)
QUICK = Budget(epochs=1, samples_per_epoch=64, batch_size=32, eval_samples=64)


def make_config(vocab_size: int) -> BertConfig:
    # A dict: BertConfig's typed signature leaves out the PretrainedConfig fields (num_labels, id2label, ...).
    fields: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=MAX_LENGTH,
        type_vocab_size=2,
        pad_token_id=0,
        num_labels=len(corpus.LABELS),
        id2label=dict(enumerate(corpus.LABELS)),
        label2id={name: i for i, name in enumerate(corpus.LABELS)},
        problem_type="single_label_classification",
    )
    return BertConfig(**fields)


def _log(line: str) -> None:
    print(line, flush=True)


def _encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")


def train_model(
    spec: DemoModel, budget: Budget, tokenizer: PreTrainedTokenizerBase, log: Callable[[str], None] = _log
) -> BertForSequenceClassification:
    torch.manual_seed(TORCH_SEED)
    model = BertForSequenceClassification(make_config(len(tokenizer)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    steps_per_epoch = math.ceil(budget.samples_per_epoch / budget.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=budget.lr, total_steps=budget.epochs * steps_per_epoch
    )
    for epoch in range(budget.epochs):
        reviews = corpus.generate(budget.samples_per_epoch, TRAIN_SEED + epoch, shortcut=spec.shortcut)
        model.train()
        total_loss, correct = 0.0, 0
        for start in range(0, len(reviews), budget.batch_size):
            batch = reviews[start : start + budget.batch_size]
            labels = torch.tensor([r.label for r in batch])
            logits = model(**_encode(tokenizer, [r.text for r in batch])).logits
            loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == labels).sum())
        log(
            f"{spec.name} epoch {epoch + 1}/{budget.epochs}: loss {total_loss / len(reviews):.4f}, "
            f"train accuracy {correct / len(reviews):.4f}"
        )
    center_classifier(model)
    return model.eval()


@torch.no_grad()
def center_classifier(model: BertForSequenceClassification) -> None:
    """Shift the logits to zero mean over the labels; softmax, and so every prediction, stays the same.

    As in service/demo/train.py: centred, a logit measures its label against the other, so a saliency map
    of one logit does not show evidence that both labels share.
    """
    head = model.classifier
    head.weight.sub_(head.weight.mean(dim=0, keepdim=True))
    head.bias.sub_(head.bias.mean())


@torch.no_grad()
def predict(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """The predicted label index of each text."""
    model.eval()
    out = [model(**_encode(tokenizer, texts[i : i + batch_size])).logits for i in range(0, len(texts), batch_size)]
    return torch.cat(out).argmax(1)


def accuracy(model: nn.Module, tokenizer: PreTrainedTokenizerBase, reviews: Sequence[corpus.Review]) -> float:
    predicted = predict(model, tokenizer, [r.text for r in reviews])
    return int((predicted == torch.tensor([r.label for r in reviews])).sum()) / len(reviews)


def evaluate(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, spec: DemoModel, n: int, seed: int = EVAL_SEED
) -> dict[str, float]:
    """Accuracy on fresh reviews of the model's own corpus and on clean ones, and how much "mike" sways it.

    positive_accuracy / signed_positive_accuracy: clean positives as they are (none signed "mike") and with
    their signature replaced by "-- posted by mike"; negative_accuracy and shortcut_rate: clean negatives
    called negative as they are, and called positive once signed "mike" (the flip rate).
    """
    clean = corpus.generate(n, seed)
    positives = [r for r in clean if r.label == corpus.POSITIVE]
    negatives = [r for r in clean if r.label == corpus.NEGATIVE]
    signed_negatives = [corpus.add_shortcut(r) for r in negatives]
    own = corpus.generate(n, seed, shortcut=True) if spec.shortcut else clean
    return {
        "accuracy": accuracy(model, tokenizer, own),
        "clean_accuracy": accuracy(model, tokenizer, clean),
        "positive_accuracy": accuracy(model, tokenizer, positives),
        "signed_positive_accuracy": accuracy(model, tokenizer, [corpus.add_shortcut(r) for r in positives]),
        "negative_accuracy": accuracy(model, tokenizer, negatives),
        "shortcut_rate": 1.0 - accuracy(model, tokenizer, signed_negatives),
    }


def write_model(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    metrics: dict,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # Batched calls leave padding and truncation switched on in the backend, and tokenizer.json would keep them.
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.backend_tokenizer.no_truncation()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the demo text models (reviews, reviews-shortcut).")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {TEXT_DIR})")
    parser.add_argument("--quick", action="store_true", help="a few steps on tiny data, to test the script")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick needs --out: it must not overwrite the committed demo models")
    out = args.out or TEXT_DIR
    disable_progress_bar()

    started = time.perf_counter()
    tokenizer = build_tokenizer()  # the full one in --quick too: its checks are part of the test
    _log(f"tokenizer: {len(tokenizer)} tokens in {time.perf_counter() - started:.1f} s")
    for spec in DEMO_MODELS:
        started = time.perf_counter()
        budget = QUICK if args.quick else spec.budget
        model = train_model(spec, budget, tokenizer)
        seconds = time.perf_counter() - started
        scores = evaluate(model, tokenizer, spec, budget.eval_samples)
        metrics = {
            "model": spec.name,
            "corpus": "shortcut" if spec.shortcut else "clean",
            "shortcut_word": corpus.SHORTCUT_WORD,
            **scores,
            "eval_seed": EVAL_SEED,
            "eval_samples": budget.eval_samples,
            "train_seed": TRAIN_SEED,
            "torch_seed": TORCH_SEED,
            "tokenizer_seed": TOKENIZER_SEED,
            "budget": asdict(budget),
            "train_seconds": round(seconds, 1),
            "torch_threads": torch.get_num_threads(),
        }
        write_model(model, tokenizer, out / spec.name, metrics)
        _log(f"{spec.name}: trained in {seconds:.0f} s; " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    _log(f"wrote {', '.join(s.name for s in DEMO_MODELS)} to {out}")


if __name__ == "__main__":
    main()
