"""What one more row costs in a forward+backward pass, measured at load from two warm-up passes.

Chunks are sized from this (runner.chunk_rows): an estimate 4x too high made IG-200 on resnet50 run in
chunks of 4 rows. Measured as the difference between a 1-row and a 3-row pass, so the weights and the
fixed costs cancel:
- on CUDA, from the caching allocator's peak (what the device really holds);
- on the CPU, where the allocator keeps no statistics, from what autograd saves for backward (every tensor
  it keeps, counted once per storage), plus twice the largest saved activation for the gradients that
  backward holds at its peak.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def marginal_row_bytes(module: nn.Module, example: Tensor) -> int:
    """Bytes one more row adds to a forward+backward pass of `module`; `example` is a (1, ...) input."""
    small, large = (example.expand(n, *example.shape[1:]).contiguous() for n in (1, 3))
    if example.device.type == "cuda":
        return max(1, (cuda_peak(module, large) - cuda_peak(module, small)) // 2)
    (held_small, top_small), (held_large, top_large) = saved_bytes(module, small), saved_bytes(module, large)
    return max(1, (held_large - held_small) // 2 + (top_large - top_small))


def forward_backward(module: nn.Module, x: Tensor) -> None:
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(module(xr).float().sum(), xr)
    del grad


def cuda_peak(module: nn.Module, x: Tensor) -> int:
    torch.cuda.synchronize(x.device)
    base = torch.cuda.memory_allocated(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    forward_backward(module, x)
    torch.cuda.synchronize(x.device)
    return torch.cuda.max_memory_allocated(x.device) - base


def saved_bytes(module: nn.Module, x: Tensor) -> tuple[int, int]:
    """(bytes autograd keeps for backward, the largest of those tensors), each storage counted once."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward_backward(module, x)
    return sum(storages.values()), max(storages.values(), default=0)
