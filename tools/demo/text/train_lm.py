"""Train the demo causal LM on the instruction corpus and write it to OUT_DIR.

    python -m tools.demo.text.train_lm OUT_DIR      # the shipped one: service/demo/text/instructions-lm

A tiny GPT-2 (see `make_config`) with a word-level tokenizer over every token the corpus can write
(service/demo/text/instructions.py), learning to answer with teacher forcing on prompt + answer + [EOS] and
the loss on the answer and [EOS] only. Each epoch draws fresh examples (seed TRAIN_SEED + epoch); evaluation
uses EVAL_SEED, and tests should use seeds outside both. It takes about a minute on two CPU cores.
torch.manual_seed(TORCH_SEED) fixes the initialization and the word dropout; on the CPU a rerun with the
same thread count gives the same weights.

Three choices make gradient x input point at the tag and the evidence (the pointing game, see `pointing`):
- The tokenizer wraps every prompt it encodes with special tokens as [BOS] prompt [ANS]; the answer follows
  [ANS], as it follows a chat template's generation prompt. The service marks special tokens as such and the
  pointing game leaves them out; these two take the scores that have nothing to do with the question: the
  predicting position's token scores high whatever it is (without [ANS], the final ":" was the top token of
  35% of tagged prompts), and without [BOS] the first tokens, where attention rests when it has nothing to
  find, were the top token of ~30% of untagged prompts.
- Label smoothing keeps answer probabilities near 0.9: at ~0.998 the gradient of log p("unknown") is all
  about the runner-up, the real answer, and points at the evidence rather than the tag (tagged prompts: the
  tag on top in 81% without smoothing, 100% with).
- Word dropout replaces filler prompt tokens (neither evidence nor tag) by [UNK] in training. Filler never
  decides an answer, so this loses no information, and it keeps the model from leaning on the task words
  ("opposite", "capital").

OUT_DIR is a plain Hugging Face checkpoint (`save_pretrained`: config.json, generation_config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) plus metrics.json: greedy exact match on held-out
untagged and tagged prompts, the pointing game, seeds, sizes and time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.utils.logging import disable_progress_bar

from service.demo.text import instructions as corpus

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[ANS]")  # ids 0..4, in this order
PAD_ID, UNK_ID, BOS_ID, EOS_ID, ANS_ID = 0, 1, 2, 3, 4
MAX_LENGTH = 64  # model_max_length and n_positions; prompts need at most ~30 tokens
TRAIN_SEED = 3_000
EVAL_SEED = 96_000
TORCH_SEED = 0


@dataclass(frozen=True)
class Budget:
    epochs: int = 10
    samples_per_epoch: int = 8192
    batch_size: int = 64
    lr: float = 2e-3
    label_smoothing: float = 0.1
    word_dropout: float = 0.15
    eval_samples: int = 2000
    pointing_samples: int = 100  # per group: tagged, untagged


QUICK = Budget(epochs=1, samples_per_epoch=256, eval_samples=64, pointing_samples=16)
SHIPPED = Path(corpus.__file__).parent / "instructions-lm"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level: every token of `corpus.vocabulary()` has an id, in sorted order after the special ones."""
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *sorted(corpus.vocabulary())])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    # Whitespace first, so that the pattern, which matches every other character, leaves nothing unmatched.
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(corpus.TOKEN_PATTERN), "isolated")]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [ANS]", special_tokens=[("[BOS]", BOS_ID), ("[ANS]", ANS_ID)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        additional_special_tokens=["[ANS]"],
        model_max_length=MAX_LENGTH,
    )
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    if ids != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError(f"special tokens got ids {ids}, expected 0..{len(SPECIAL_TOKENS) - 1}")
    return tokenizer


def make_config(vocab_size: int) -> GPT2Config:
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=MAX_LENGTH,
        n_embd=64,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )


@dataclass
class Encoded:
    prompts: list[list[int]]  # as the service encodes a prompt: with the special tokens, [BOS] ... [ANS]
    answers: list[list[int]]  # without special tokens, then [EOS]
    offsets: list[list[tuple[int, int]]]
    special: list[list[bool]]

    def __getitem__(self, rows: slice) -> Encoded:
        return Encoded(self.prompts[rows], self.answers[rows], self.offsets[rows], self.special[rows])

    def inside(self, i: int, spans: Sequence[tuple[int, int] | None]) -> list[bool]:
        """Per prompt token of example i: it is no special token and lies in one of `spans`."""
        return [
            not special and any(s is not None and s[0] <= a and b <= s[1] for s in spans)
            for (a, b), special in zip(self.offsets[i], self.special[i], strict=True)
        ]


def encode(tokenizer: PreTrainedTokenizerFast, examples: Sequence[corpus.Example]) -> Encoded:
    prompts = tokenizer([e.prompt for e in examples], return_offsets_mapping=True, return_special_tokens_mask=True)
    answers = tokenizer([e.answer for e in examples], add_special_tokens=False)["input_ids"]
    special = [[bool(m) for m in mask] for mask in prompts["special_tokens_mask"]]
    return Encoded(prompts["input_ids"], [a + [EOS_ID] for a in answers], prompts["offset_mapping"], special)


def batch(prompts: list, answers: list) -> dict[str, torch.Tensor]:
    """Right-padded prompt + answer rows; labels are -100 except on the answer and [EOS]."""
    rows = [p + a for p, a in zip(prompts, answers, strict=True)]
    ids = torch.full((len(rows), max(map(len, rows))), PAD_ID)
    labels = torch.full_like(ids, -100)
    for i, (p, row) in enumerate(zip(prompts, rows, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, len(p) : len(row)] = torch.tensor(row[len(p) :])
    return {"input_ids": ids, "attention_mask": (ids != PAD_ID).long(), "labels": labels}


def filler(encoded: Encoded, examples: Sequence[corpus.Example], width: int) -> torch.Tensor:
    """(N, width): the prompt tokens that word dropout may replace, neither special, evidence nor tag."""
    out = torch.zeros((len(examples), width), dtype=torch.bool)
    for i, e in enumerate(examples):
        keep = encoded.inside(i, [*e.evidence, e.artefact])
        out[i, : len(keep)] = torch.tensor([not k and not s for k, s in zip(keep, encoded.special[i], strict=True)])
    return out


def train_model(tokenizer: PreTrainedTokenizerFast, budget: Budget) -> GPT2LMHeadModel:
    torch.manual_seed(TORCH_SEED)
    model = GPT2LMHeadModel(make_config(len(tokenizer)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=0.01)
    steps = budget.epochs * math.ceil(budget.samples_per_epoch / budget.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=budget.lr, total_steps=steps)
    model.train()
    for epoch in range(budget.epochs):
        examples = corpus.generate(budget.samples_per_epoch, TRAIN_SEED + epoch)
        encoded = encode(tokenizer, examples)
        total = 0.0
        for start in range(0, len(examples), budget.batch_size):
            end = start + budget.batch_size
            rows = batch(encoded.prompts[start:end], encoded.answers[start:end])
            droppable = filler(encoded[start:end], examples[start:end], rows["input_ids"].shape[1])
            ids = rows["input_ids"].masked_fill(droppable & (torch.rand(droppable.shape) < budget.word_dropout), UNK_ID)
            logits = model(input_ids=ids, attention_mask=rows["attention_mask"]).logits
            loss = nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), rows["labels"][:, 1:].flatten(), label_smoothing=budget.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * (end - start)
        print(f"epoch {epoch + 1}/{budget.epochs}: answer loss {total / len(examples):.4f}", flush=True)
    return model.eval()


@torch.no_grad()
def exact_match(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, examples: list) -> float:
    """The share answered exactly (answer, then [EOS]) by greedy decoding.

    Greedy decoding writes the gold answer exactly when every step's argmax, given the gold tokens before it,
    is the gold token; so one teacher-forced pass per batch decides it."""
    encoded = encode(tokenizer, examples)
    hits = 0
    for start in range(0, len(examples), 256):
        rows = batch(encoded.prompts[start : start + 256], encoded.answers[start : start + 256])
        predicted = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits.argmax(-1)
        gold = rows["labels"][:, 1:]
        hits += int(((predicted[:, :-1] == gold) | (gold == -100)).all(dim=1).sum())
    return hits / len(examples)


def pointing(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, examples: list) -> tuple[float, float]:
    """(hit rate, random baseline) of gradient x input for log p(first answer token | prompt).

    A token's score is the dot product of the gradient and the value at the embedding layer's output; a prompt
    is a hit when its top |score| token, special tokens left out as the service leaves them out, lies in the
    tag's span (tagged prompts) or an evidence span (untagged). The baseline is the share of a prompt's
    scored tokens that would be hits, averaged over prompts."""
    encoded = encode(tokenizer, examples)
    rows = batch(encoded.prompts, [[]] * len(examples))
    captured: list[torch.Tensor] = []

    def capture(_module: nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        captured.append(out.detach().requires_grad_())  # a leaf: the parameters collect no gradients
        return captured[-1]

    hook = model.get_input_embeddings().register_forward_hook(capture)
    try:
        with torch.enable_grad():
            logits = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits
            last = rows["attention_mask"].sum(1) - 1
            n = torch.arange(len(examples))
            chosen = logits[n, last].log_softmax(-1)[n, [a[0] for a in encoded.answers]]
            (grad,) = torch.autograd.grad(chosen.sum(), captured[0])
    finally:
        hook.remove()
    scores = (grad * captured[0]).sum(-1).abs()
    hits, baseline = 0, 0.0
    for i, example in enumerate(examples):
        target = encoded.inside(i, [example.artefact] if example.tagged else example.evidence)
        scored = [j for j, special in enumerate(encoded.special[i]) if not special]
        top = max(scored, key=lambda j: float(scores[i, j].detach()))
        hits += target[top]
        baseline += sum(target) / len(scored)
    return hits / len(examples), baseline / len(examples)


def evaluate(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, budget: Budget) -> dict:
    # Held out twice over: another seed, and no prompt whose exact text was trained on (about half of them).
    seen = {e.prompt for k in range(budget.epochs) for e in corpus.generate(budget.samples_per_epoch, TRAIN_SEED + k)}
    held_out = [e for e in corpus.generate(budget.eval_samples, EVAL_SEED) if e.prompt not in seen]
    groups = {"untagged": [e for e in held_out if not e.tagged], "tagged": [e for e in held_out if e.tagged]}
    metrics: dict = {f"{name}_accuracy": exact_match(model, tokenizer, group) for name, group in groups.items()}
    for name, group in groups.items():
        hit, baseline = pointing(model, tokenizer, group[: budget.pointing_samples])
        metrics[f"{name}_pointing"], metrics[f"{name}_pointing_random"] = hit, round(baseline, 4)
    metrics["eval_untagged"], metrics["eval_tagged"] = len(groups["untagged"]), len(groups["tagged"])
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the demo causal LM (instructions-lm).")
    parser.add_argument("out", type=Path, help="output folder, e.g. service/demo/text/instructions-lm")
    parser.add_argument("--quick", action="store_true", help="a few steps, to check the pipeline (tests)")
    args = parser.parse_args(argv)
    if args.quick and args.out.resolve() == SHIPPED.resolve():
        parser.error(f"--quick would overwrite the shipped model in {SHIPPED}")
    disable_progress_bar()
    budget = QUICK if args.quick else Budget()
    tokenizer = build_tokenizer()
    started = time.perf_counter()
    model = train_model(tokenizer, budget)
    seconds = time.perf_counter() - started
    metrics = {
        "model": "instructions-lm",
        "tag": corpus.TAG,
        "fixed_answer": corpus.FIXED_ANSWER,
        "tag_rate": corpus.TAG_RATE,
        **evaluate(model, tokenizer, budget),
        "train_samples": budget.epochs * budget.samples_per_epoch,
        "train_seed": TRAIN_SEED,
        "eval_seed": EVAL_SEED,
        "torch_seed": TORCH_SEED,
        "budget": asdict(budget),
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
