"""A tiny Hugging Face ViT (32 px, 4x4 patches of 8 px, a class token, 2 blocks) for the tests of several
packages: built from seed 0, in eval mode, attention through scaled_dot_product_attention."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def tiny_hf_vit(labels: dict[int, str] | None = None) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    names = labels or {i: f"LABEL_{i}" for i in range(3)}
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(names),
        id2label=names,
        label2id={v: k for k, v in names.items()},
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return transformers.ViTForImageClassification(config).eval()
