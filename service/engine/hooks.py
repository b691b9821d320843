"""Forward hooks that are always removed and only see their own thread's passes.

Several request threads may run the same served model at once; a hook registered by one of them would
otherwise also capture the others' activations. Each hook records only calls made on the thread that
registered it, and `finally` removes it even when the pass fails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter


class _GuidedReLU(torch.autograd.Function):
    """Identity on a ReLU's output; backward lets only positive gradients through (Springenberg et al.)."""

    @staticmethod
    def forward(ctx, output: Tensor) -> Tensor:
        ctx.save_for_backward(output)
        return output.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return grad.clamp(min=0) * (output > 0)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """This thread's passes backpropagate through every nn.ReLU as guided backprop does: relu(dS/d input).

    A forward hook wraps each ReLU's output (inplace ReLUs and ReLUs called twice included); the ReLU's own
    backward then masks by its input, so the gradient is relu(grad) * (input > 0), Captum's GuidedBackprop.
    The hooks are removed in `finally`: the served model is left exactly as it was, also when a pass fails.
    """
    owner = threading.get_ident()

    def hook(_module: nn.Module, _inputs: object, output: object) -> Tensor | None:
        if threading.get_ident() == owner and isinstance(output, Tensor):
            return _GuidedReLU.apply(output)
        return None

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def find_module(model: nn.Module, name: str) -> nn.Module:
    module = dict(model.named_modules()).get(name)
    if module is None or name == "":
        raise InvalidParameter(f"the model has no layer named {name!r}", field="method.layer")
    return module


@contextmanager
def capture_outputs(module: nn.Module) -> Iterator[list[Tensor]]:
    """Yields a list that receives the module's outputs of this thread's forward passes."""
    owner = threading.get_ident()
    outputs: list[Tensor] = []

    def hook(_module: nn.Module, _inputs: object, output: object) -> Tensor | None:
        if threading.get_ident() == owner and isinstance(output, Tensor):
            outputs.append(output)
            # Later layers get a copy: an in-place op downstream (ReLU(inplace=True), `out += identity`)
            # would otherwise overwrite the captured activations and move dS/dA past itself.
            return output.clone()
        return None

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()
