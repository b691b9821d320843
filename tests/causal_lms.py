"""A tiny GPT-2 for the causal LM tests: random weights (seeded), a word-level fast tokenizer, saved as a
transformers directory and served from a models TOML, as a user's local Hugging Face directory is."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = (
    "the a cat dog bird sat ran flew on under mat tree sky question answer : ? colour of is blue red green "
    "yes no tag big small"
).split()
VOCAB = ["<pad>", "<eos>", *WORDS]
MAX_LENGTH = 24


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    table = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<pad>"))
    table.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=table, pad_token="<pad>", eos_token="<eos>")


def gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=1, eos_token_id=1,
        pad_token_id=0,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model.eval()


def write_lm(folder: Path, name: str = "tiny-lm", **entry) -> Path:
    """gpt2(seed=0) and its tokenizer saved in folder/name, and a models TOML serving it as `name`."""
    directory = folder / name
    gpt2().save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    fields = {"name": name, "kind": "causal_lm", "architecture": f"transformers:{name}", "max_length": MAX_LENGTH,
              "generation": {"max_new_tokens": 4}}  # fmt: skip
    fields.update(entry)
    config = folder / "models.toml"
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items() if not isinstance(v, dict))
    tables = "".join(
        f"[models.{k}]\n" + "".join(f"{a} = {json.dumps(b)}\n" for a, b in v.items())
        for k, v in fields.items()
        if isinstance(v, dict)
    )
    config.write_text("[[models]]\n" + lines + tables)
    return config
