"""Forward hooks that are always removed and only see their own thread's passes.

Several request threads may run the same served model at once; a hook registered by one of them would
otherwise also capture the others' activations. Each hook records only calls made on the thread that
registered it, and `finally` removes it even when the pass fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter


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


def observe_outputs(model: nn.Module, example: Tensor, observe: Callable[[str, Tensor], None]) -> None:
    """One inference forward of `example`, calling observe(module name, output) as each module finishes."""
    owner = threading.get_ident()

    def recorder(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if threading.get_ident() == owner and isinstance(output, Tensor):
                observe(name, output)

        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in model.named_modules() if n]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()


def spatial_layers(model: nn.Module, example: Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Modules whose output is (N, C, H, W) with H * W > 1, in the order their forward finishes.

    The last one is the default Grad-CAM layer (for torchvision's resnet18, `layer4`).
    """
    finished: dict[str, tuple[int, ...]] = {}

    def observe(name: str, output: Tensor) -> None:
        if output.dim() == 4 and output.shape[2] * output.shape[3] > 1:
            finished.pop(name, None)  # a module called twice counts where it last finished
            finished[name] = tuple(output.shape[1:])

    observe_outputs(model, example, observe)
    return list(finished.items())
