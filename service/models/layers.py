"""Probing a model's layers at load: which modules output feature maps, in which layout (the CAM layers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layouts import Layout, declared, infer, to_maps
from .tracing import trace


def observe_outputs(
    model: nn.Module, example: Tensor, observe: Callable[[str, Tensor], object], grad: bool = False
) -> Tensor:
    """One forward of `example` (inference mode unless `grad`), calling observe(module name, output) as each
    module finishes; returns the model's output."""
    owner = threading.get_ident()

    def recorder(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if threading.get_ident() == owner and isinstance(output, Tensor):
                observe(name, output)

        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in model.named_modules() if n]
    try:
        with torch.inference_mode(not grad):
            return model(example)
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class LayerTable:
    """The CAM layers of an image model, as established at load (see layouts.py)."""

    layouts: dict[str, Layout] = field(default_factory=dict)  # in the order their forward finishes
    refused: dict[str, str] = field(default_factory=dict)  # layer -> why its layout is unknown
    default: str | None = None

    @property
    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, (C, h, w)) of each layer, as CAM methods see its maps."""
        return [(name, layout.shape) for name, layout in self.layouts.items()]


def cam_layers(model: nn.Module, example: Tensor) -> LayerTable:
    """Every module whose output has a known feature-map layout, and the default CAM layer.

    One forward and backward of `example` (which also warms the model up). The default is, for a
    transformer (a model built of repeated blocks with attention), its last block, or where the score does
    not depend on that block's patch tokens (a ViT reads only the class token after it) the last of the
    block's own parts whose patch tokens it does depend on: for torchvision's ViT `ln_1` of the last encoder
    layer, pytorch-grad-cam's choice. Otherwise (a CNN) it is the last (N, C, H, W) layer: resnet's `layer4`.
    """
    outputs: dict[str, Tensor] = {}
    modules = dict(model.named_modules())

    def observe(name: str, output: Tensor) -> None:
        outputs.pop(name, None)  # a module called twice counts where it last finished
        outputs[name] = output

    size = (example.shape[-2], example.shape[-1])
    generator = torch.Generator().manual_seed(0)
    with torch.enable_grad(), head_input(model) as features:
        # A random input: a constant one can make every patch token alike.
        x = torch.randn(example.shape, generator=generator).to(example).requires_grad_(True)
        logits = observe_outputs(model, x, observe, grad=True)
        table = LayerTable()
        hints = declared(model)
        previous: tuple[tuple[int, ...], Layout | str] = ((), "")
        for name, output in outputs.items():
            shape = tuple(output.shape)
            before = previous[1] if previous[0] == shape and isinstance(previous[1], Layout) else None
            layout = infer(modules[name], shape, size, hints, before)
            previous = (shape, layout)
            if isinstance(layout, Layout):
                table.layouts[name] = layout
            elif output.dim() in (3, 4):
                table.refused[name] = layout
        # What the head reads, not the logits: a freshly built ViT's head is all zeros (torchvision).
        score = (features[-1] * torch.randn(features[-1].shape, generator=generator)).sum() if features else logits
        table.default = default_layer(model, table, reached(score, outputs, table))
    return table


@contextmanager
def head_input(model: nn.Module) -> Iterator[list[Tensor]]:
    """The inputs of the model's last nn.Linear (its classifier head, where it has one) during the block."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    seen: list[Tensor] = []
    if not linears:
        yield seen
        return

    def hook(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
        seen.append(args[0].float())

    handle = linears[-1].register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def reached(score: Tensor, outputs: dict[str, Tensor], table: LayerTable) -> set[str]:
    """The layers on whose feature maps (prefix tokens aside) the score depends."""
    names = [n for n in table.layouts if outputs[n].requires_grad]
    try:
        grads = torch.autograd.grad(score.float().sum(), [outputs[n] for n in names], allow_unused=True)
    except RuntimeError:  # a model whose graph cannot be differentiated: no layer reaches the score
        return set()
    return {n for n, g in zip(names, grads, strict=True) if g is not None and to_maps(g, table.layouts[n]).any()}


def default_layer(model: nn.Module, table: LayerTable, reach: set[str]) -> str | None:
    order = list(table.layouts)
    # Blocks in definition order (a block that returns a tuple, as Hugging Face's do, is no layer itself).
    blocks = [name for name, _ in model.named_modules() if name and is_attention_block(model, name)]
    blocks = [b for b in blocks if not any(o.startswith(f"{b}.") for o in blocks)]  # Swin: a block, not a stage
    if blocks:
        last = blocks[-1]
        inside = [n for n in order if n.rpartition(".")[0] == last and n in reach]  # its own parts
        if last in reach:
            return last
        if inside:
            return inside[-1]
    maps = [n for n in order if table.layouts[n].kind == "nchw" and table.layouts[n].grid != (1, 1)]
    spatial = [n for n in maps if n in reach] or maps
    return spatial[-1] if spatial else (order[-1] if order else None)


def is_attention_block(model: nn.Module, name: str) -> bool:
    """A transformer block: one of two or more siblings of its class in a container, with attention inside."""
    parent_name, _, _ = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    module = model.get_submodule(name)
    if not isinstance(parent, (nn.ModuleList, nn.Sequential)):
        return False
    siblings = sum(type(child) is type(module) for child in parent.children())
    return siblings >= 2 and any(is_attention(m) for m in module.modules())


def is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower()


RELU_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_}
# Other activations: guided backpropagation changes the backward of ReLUs only, so through these it would
# give a map that is guided in some layers and plain gradient in others, which no paper defines.
OTHER_ACTIVATIONS = (nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish, nn.ELU, nn.LeakyReLU, nn.PReLU, nn.SELU, nn.CELU)
OTHER_FUNCTIONS = {F.gelu, F.silu, F.hardswish, F.mish, F.elu, F.leaky_relu, F.selu, F.celu}


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
        if node.op == "call_function" and node.target in OTHER_FUNCTIONS:
            return f"it applies {node.target.__name__} too, whose backward guided backpropagation leaves as it is"
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        return "it has no nn.ReLU modules"
    other = next((m for m in model.modules() if isinstance(m, OTHER_ACTIVATIONS)), None)
    if other is not None:
        return (
            f"it has {type(other).__name__} activations besides its ReLUs, whose backward guided backpropagation "
            "leaves as it is (a map guided in some layers only)"
        )
    return None
