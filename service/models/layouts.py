"""How a layer's output lays out its feature maps: (N, C, H, W), channels-last (N, H, W, C), or tokens.

CAM methods need `(N, C, h, w)`. Convolutional layers give it; Swin's stages give `(N, h, w, C)`; a vision
transformer's blocks give tokens `(N, T, C)`: `prefix` tokens (class, distillation, register tokens) and then
the `h * w` patch tokens row by row. Reading one layout as another gives a wrong map with no error, so the
layout of each layer is established at load from the output's shape and the input's size, and a layer whose
layout cannot be established is refused with the reason (`infer` returns a string).

A grid `(h, w)` fits an input `(H, W)` when one integer stride `s` gives both sides, as a convolution,
pooling or patch embedding does: `h` is `H // s` or `ceil(H / s)`, and `w` likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

LayoutKind = Literal["nchw", "nhwc", "tokens"]
MAX_PREFIX = 8  # class + distillation + register tokens (DINOv2 with registers: 5)
# Modules whose output is (N, C, H, W) by construction: they break the tie when C could also be a side.
CHANNELS_FIRST = (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.MaxPool2d, nn.AvgPool2d)
# Elementwise modules keep their input's layout: a ReLU after a convolution is (N, C, H, W) like it.
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Hardswish,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Dropout,
    nn.Identity,
)


@dataclass(frozen=True)
class Layout:
    kind: LayoutKind
    channels: int
    grid: tuple[int, int]  # (h, w) of the feature map
    prefix: int = 0  # tokens only: leading tokens that are not patches

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the maps `to_maps` gives."""
        return (self.channels, *self.grid)

    def describe(self) -> str:
        if self.kind == "tokens":
            return f"tokens (N, {self.prefix} + {self.grid[0]}x{self.grid[1]}, {self.channels})"
        return "(N, C, H, W)" if self.kind == "nchw" else "channels-last (N, H, W, C)"


def to_maps(values: Tensor, layout: Layout) -> Tensor:
    """A layer's output (or its gradient) as (N, C, h, w): prefix tokens dropped, patch tokens and
    channels-last maps moved to channels-first (pytorch-grad-cam's `reshape_transform`)."""
    if layout.kind == "nchw":
        return values
    if layout.kind == "tokens":
        h, w = layout.grid
        values = values[:, layout.prefix :].reshape(values.shape[0], h, w, values.shape[-1])
    return values.permute(0, 3, 1, 2)


def grid_fits(h: int, w: int, size: tuple[int, int]) -> bool:
    height, width = size
    for stride in range(1, max(height, width) + 1):
        if h in (height // stride, -(-height // stride)) and w in (width // stride, -(-width // stride)):
            return True
    return False


def token_grids(tokens: int, size: tuple[int, int]) -> list[tuple[int, tuple[int, int]]]:
    """Every (prefix, (h, w)) with tokens = prefix + h * w for a patch size that divides the input."""
    height, width = size
    found = []
    for patch in range(1, min(height, width) + 1):
        if height % patch or width % patch:
            continue
        h, w = height // patch, width // patch
        if 0 <= tokens - h * w <= MAX_PREFIX:
            found.append((tokens - h * w, (h, w)))
    return found


def infer(
    module: nn.Module,
    shape: tuple[int, ...],
    size: tuple[int, int],
    hints: Hints | None = None,
    before: Layout | None = None,
) -> Layout | str:
    """The layout of a module's output of `shape` (batch first) for inputs of `size`, or why it is unknown.

    `hints`: what the model declares of its tokens (see `declared`), which decides between token grids that
    both fit the output. `before`: the layout of the output that finished just before, where it had this
    shape; an elementwise module (its input, in a Sequential) keeps it.
    """
    if len(shape) == 4:
        _, a, b, c = shape
        # A 1x1 map is a feature map only where the module makes (N, C, H, W) by construction (a conv).
        first = grid_fits(b, c, size) and (b * c > 1 or isinstance(module, CHANNELS_FIRST))
        last = grid_fits(a, b, size) and a * b > 1
        if first and last and isinstance(module, ELEMENTWISE) and before is not None:
            return before
        if first and last and not isinstance(module, CHANNELS_FIRST):
            return f"both (N, C, H, W) and (N, H, W, C) fit its output {tuple(shape[1:])}"
        if first:
            return Layout("nchw", a, (b, c))
        if last:
            return Layout("nhwc", c, (a, b))
        return f"its output {tuple(shape[1:])} is not a feature map of a {size[0]}x{size[1]} input"
    if len(shape) == 3:
        _, tokens, channels = shape
        grids = token_grids(tokens, size)
        if hints is not None:
            grids = hints.choose(grids, size)
        if len(grids) == 1:
            ((count, grid),) = grids
            return Layout("tokens", channels, grid, count)
        if not grids:
            return f"its {tokens} tokens are no patch grid of a {size[0]}x{size[1]} input"
        return f"its {tokens} tokens fit several patch grids: {', '.join(f'{p} + {h}x{w}' for p, (h, w) in grids)}"
    return f"its output has {len(shape)} dimensions"


@dataclass(frozen=True)
class Hints:
    prefix: int | None = None  # prefix tokens the model says it has
    patch: int | None = None  # its patch embedding's patch size

    def choose(
        self, grids: list[tuple[int, tuple[int, int]]], size: tuple[int, int]
    ) -> list[tuple[int, tuple[int, int]]]:
        """The grids that agree with what the model declares, where any does (later Swin stages have
        patches of several embedding patches: the declared patch size is not theirs)."""
        for keep in (
            lambda g: (
                g[0] == self.prefix
                and self.patch is not None
                and g[1] == (size[0] // self.patch, size[1] // self.patch)
            ),
            lambda g: g[0] == self.prefix,
            lambda g: self.patch is not None and g[1] == (size[0] // self.patch, size[1] // self.patch),
        ):
            chosen = [g for g in grids if keep(g)]
            if chosen and len(grids) > 1:
                return chosen
        return grids


def declared(model: nn.Module) -> Hints:
    """What a model says of its tokens: timm's `num_prefix_tokens` and `patch_embed.patch_size`,
    torchvision's `class_token` and `patch_size`, a Hugging Face config's `patch_size`."""
    prefix: int | None = None
    patch: int | None = None
    owners = [model, *(m for m in model.children())]  # wrappers (Hugging Face models) hold the model
    for owner in owners:
        count = getattr(owner, "num_prefix_tokens", None)
        if isinstance(count, int) and prefix is None:
            prefix = count
        if isinstance(getattr(owner, "class_token", None), nn.Parameter) and prefix is None:
            prefix = 1  # torchvision's VisionTransformer
        for source in (owner, getattr(owner, "config", None), getattr(owner, "patch_embed", None)):
            value = getattr(source, "patch_size", None)
            value = value[0] if isinstance(value, (tuple, list)) and value else value
            if isinstance(value, int) and patch is None:
                patch = value
    return Hints(prefix, patch)
