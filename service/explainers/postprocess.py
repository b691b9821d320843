"""Reduction over channels and per-image normalization: separate steps, applied after any method."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Reduce = Literal["max_abs", "sum_abs", "sum", "l2", "none"]
Normalize = Literal["minmax", "percentile", "none"]
REDUCTIONS: tuple[str, ...] = ("max_abs", "sum_abs", "sum", "l2", "none")
NORMALIZATIONS: tuple[str, ...] = ("minmax", "percentile", "none")


def reduce_channels(attributions: Tensor, how: Reduce) -> Tensor:
    """(N, C, H, W) -> (N, H, W) (or unchanged for "none"); CAM maps (N, H, W) pass through."""
    if attributions.dim() == 3 or how == "none":
        return attributions
    if how == "max_abs":  # Simonyan et al.'s choice
        return attributions.abs().amax(dim=1)
    if how == "sum_abs":
        return attributions.abs().sum(dim=1)
    if how == "sum":
        return attributions.sum(dim=1)
    if how == "l2":
        return attributions.pow(2).sum(dim=1).sqrt()
    raise ValueError(f"unknown reduction {how!r}")


def normalize(maps: Tensor, how: Normalize, percentile: float = 99.5) -> Tensor:
    """Per image (first dimension). minmax -> [0, 1]; percentile -> [-1, 1] keeping the sign."""
    if how == "none":
        return maps
    flat = maps.reshape(len(maps), -1)
    if how == "minmax":
        lo, hi = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
        # A constant map has no structure to show: it becomes all zeros, not NaN.
        scaled = (flat - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return scaled.reshape(maps.shape)
    if how == "percentile":
        # kthvalue, not quantile: torch.quantile refuses inputs over 16M values (large original-size maps).
        k = max(1, min(flat.shape[1], math.ceil(percentile / 100 * flat.shape[1])))
        scale = flat.abs().kthvalue(k, dim=1, keepdim=True).values
        scale = torch.where(scale > 0, scale, flat.abs().amax(dim=1, keepdim=True))
        scaled = flat / torch.where(scale > 0, scale, torch.ones_like(scale))
        return scaled.clamp(-1, 1).reshape(maps.shape)
    raise ValueError(f"unknown normalization {how!r}")
