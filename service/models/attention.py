"""Attention probabilities of a pass, from models whose fused attention kernels never materialise them.

torchvision's ViT (`nn.MultiheadAttention`), timm's and Hugging Face's (`attn_implementation="sdpa"`) all
compute attention through `torch.nn.functional.scaled_dot_product_attention`, which returns softmax(QK^T)V
but not softmax(QK^T). This module wraps that function once, process-wide. Outside a capture the wrapper is
the original call. Inside one (this thread only), the output is still the original kernel's, bit for bit,
and the probabilities A are recomputed beside it from the same queries and keys by the definition in
PyTorch's documentation (scale, boolean or additive mask, causal mask, grouped heads). For gradients,
A @ V - (A @ V).detach(), which is exactly zero, is added to the output: dS/dA then flows to A while
the queries, keys and values keep exactly their own gradients (A and V are detached from them).

`nn.MultiheadAttention` has a fast path that bypasses the function under inference; it is not taken while
autograd records the pass, so captured passes run with gradients enabled.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layouts import declared, infer

_original = F.scaled_dot_product_attention
_signature = inspect.signature(
    lambda query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False: None
)
_local = threading.local()


def probabilities(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(Q K^T * scale + mask), (..., heads, L, S): the reference definition of PyTorch's docs."""
    length, source = query.shape[-2], key.shape[-2]
    factor = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa:
        key = key.repeat_interleave(query.shape[-3] // key.shape[-3], -3)
    logits = (query.float() @ key.float().transpose(-2, -1)) * factor
    if is_causal:
        causal = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
        logits = logits.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            logits = logits.masked_fill(~attn_mask, float("-inf"))
        else:
            logits = logits + attn_mask.float()
    return logits.softmax(dim=-1)


def _attention(*args: Any, **kwargs: Any) -> Tensor:
    out = _original(*args, **kwargs)
    sink: list[Tensor] | None = getattr(_local, "sink", None)
    if sink is None:
        return out
    bound = _signature.bind(*args, **kwargs).arguments
    query, key, value = bound["query"].detach(), bound["key"].detach(), bound["value"].detach()
    mask = bound.get("attn_mask")
    probs = probabilities(
        query, key, mask, bound.get("is_causal", False), bound.get("scale"), bound.get("enable_gqa", False)
    )
    if torch.is_grad_enabled():
        probs.requires_grad_(True)
        if bound.get("enable_gqa", False):
            value = value.repeat_interleave(query.shape[-3] // value.shape[-3], -3)
        mixed = probs.to(value.dtype) @ value
        out = out + (mixed - mixed.detach())
    sink.append(probs)
    return out


F.scaled_dot_product_attention = _attention  # torch.nn.functional's own callers look the name up here too


@contextmanager
def capture_attention() -> Iterator[list[Tensor]]:
    """Yields a list that receives, in call order, the attention probabilities (..., heads, L, S) of this
    thread's attention calls; with gradients enabled, each is a tensor to differentiate the score by."""
    previous = getattr(_local, "sink", None)
    sink: list[Tensor] = []
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous


@dataclass(frozen=True)
class AttentionInfo:
    """The attention a model's forward computes, as found at load: one (heads, T, T) map per block."""

    blocks: int
    heads: int
    prefix: int  # leading tokens that are not patches (the class token first)
    grid: tuple[int, int]

    @property
    def tokens(self) -> int:
        return self.prefix + self.grid[0] * self.grid[1]

    @property
    def row_bytes(self) -> int:
        """What capturing one row's attention adds to a pass: per block the float32 logits and probabilities
        and, with gradients, dS/dA (the measured row cost at load ran without the capture)."""
        return 3 * 4 * self.blocks * self.heads * self.tokens**2

    def describe(self) -> str:
        h, w = self.grid
        return f"{self.blocks} blocks x {self.heads} heads over {self.prefix} + {h}x{w} tokens"


def probe_attention(model: nn.Module, example: Tensor) -> AttentionInfo | str:
    """The model's attention, from one captured forward of a one-row `example`; or why the attention methods
    cannot read it."""
    with torch.enable_grad(), capture_attention() as maps:
        model(example[:1].detach().requires_grad_(True))
    if not maps:
        return (
            "no attention probabilities reached: the model computes attention neither with "
            "torch.nn.functional.scaled_dot_product_attention nor with nn.MultiheadAttention"
        )
    shapes = {tuple(m.shape) for m in maps}
    if len(shapes) != 1 or maps[0].dim() != 4 or maps[0].shape[0] != 1:
        return f"its attention is not global over one sequence of tokens per image (maps of shapes {sorted(shapes)})"
    _, heads, tokens, source = maps[0].shape
    layout = infer(model, (1, tokens, heads), (example.shape[-2], example.shape[-1]), declared(model))
    if tokens != source or isinstance(layout, str):
        return f"its attention over {tokens} tokens is no attention over the image's patches"
    return AttentionInfo(len(maps), heads, layout.prefix, layout.grid)
