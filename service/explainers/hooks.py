"""Forward hooks that are always removed and only see their own thread's passes.

Several request threads may run the same served model at once; a hook registered by one of them would
otherwise also capture the others' activations. Each hook records only calls made on the thread that
registered it, and `finally` removes it even when the pass fails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
