"""Probing a model's layers at load: which modules output spatial feature maps (the CAM layers)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tracing import trace


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


RELU_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_}


def relu_modules_only(model: nn.Module) -> str | None:
    """None when every ReLU of the model's forward is an nn.ReLU module (what guided backprop can reach), else
    why not: ReLUs applied as functions, no ReLU at all, or a forward torch.fx cannot trace to tell."""
    try:
        graph = trace(model)
    except Exception as exc:  # data-dependent control flow, TorchScript, ...
        return f"its forward cannot be traced to find its ReLUs ({type(exc).__name__})"
    for node in graph.nodes:
        if (node.op == "call_function" and node.target in RELU_FUNCTIONS) or (
            node.op == "call_method" and node.target in ("relu", "relu_")
        ):
            return "it applies ReLU as a function (F.relu, torch.relu or .relu()), not as an nn.ReLU module"
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        return "it has no nn.ReLU modules"
    return None
