"""What the attention methods share: the captured pass, and a token-relevance matrix read as a patch map.

Both methods build a (T, T) matrix R over the model's tokens, block by block, from the attention
probabilities of its blocks (service/models/attention.py captures them without changing the outputs). The
map is the row of the token the head reads (the class token, the first prefix token) over the patch
columns, or, for a model without prefix tokens, which pools all tokens, the mean of all rows; reshaped to
the patch grid and upsampled to the input like a CAM map.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter
from ..models.attention import AttentionInfo, probe_attention
from .base import ExplainContext
from .cam import upsampled


def attention_of(model: nn.Module, x: Tensor, ctx: ExplainContext, name: str) -> AttentionInfo:
    """The model's attention as found at load, or (scripts) by probing it; a model without one is the
    client's error, with the reason."""
    info = ctx.attention if ctx.attention is not None else probe_attention(model, x[:1])
    if isinstance(info, str):
        raise InvalidParameter(f"{name} cannot explain this model: {info}", field="method.name")
    return info


def identity(n: int, tokens: int, like: Tensor) -> Tensor:
    return torch.eye(tokens, dtype=torch.float32, device=like.device).expand(n, tokens, tokens).clone()


def token_map(relevance: Tensor, info: AttentionInfo, x: Tensor) -> Tensor:
    """(N, T, T) token relevance -> (N, H, W) map at the input's size."""
    rows = relevance[:, 0] if info.prefix else relevance.mean(dim=1)
    patches = rows[:, info.prefix :].reshape(len(relevance), *info.grid)
    return upsampled(patches, x)


def checked(maps: list[Tensor], info: AttentionInfo) -> list[Tensor]:
    """The pass's attention maps, which must be the ones found at load (a model whose forward changed
    with the input would otherwise be read wrongly)."""
    if len(maps) != info.blocks or any(m.shape[1:] != (info.heads, info.tokens, info.tokens) for m in maps):
        raise InvalidParameter("the model's attention in this pass is not the one found at load", field="method")
    return [m.float() for m in maps]
