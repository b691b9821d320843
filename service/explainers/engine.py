"""The one entry point callers use: checks the call, runs the method, leaves the model as it was."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidTarget
from .base import ExplainContext, Explainer, Explanation, Params


def explain(
    explainer: Explainer,
    model: nn.Module,
    x: Tensor,
    targets: Tensor | None,
    params: Params,
    ctx: ExplainContext,
    num_classes: int | None = None,
) -> Explanation:
    """Explain rows of x (N, C, H, W); targets (N,) class indices, -1 (or None for all) for the top class."""
    if x.dim() != 4 or len(x) == 0:
        raise ValueError(f"x must be (N, C, H, W) with N >= 1, got shape {tuple(x.shape)}")
    if targets is not None:
        targets = torch.as_tensor(targets, dtype=torch.long, device=x.device).reshape(-1)
        if len(targets) != len(x):
            raise InvalidTarget(f"{len(targets)} targets for {len(x)} images", field="target")
        if targets.min() < -1 or (num_classes is not None and targets.max() >= num_classes):
            raise InvalidTarget(
                f"target classes must be in [0, {num_classes or 'K'}), or -1 for the top class", field="target"
            )
    result = explainer.explain(model, x, targets, params, ctx)
    result.attributions = result.attributions.detach()
    return result
