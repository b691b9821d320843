"""The explainer contract and the shared machinery every method uses.

Canonical shapes only: inputs are (N, C, H, W) in model-input space, targets are (N,) int64, results are
(N, C, H, W) for pixel-space methods and (N, H, W) for CAM methods, at input resolution, unreduced.
Every model pass goes through `chunks`, so the number of rows per forward/backward is bounded by
`ExplainContext.chunk_size` whatever the method multiplies the batch by.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

Objective = Literal["logit", "probability", "log_probability"]
OBJECTIVES: tuple[str, ...] = ("logit", "probability", "log_probability")


class Params(BaseModel):
    """Base of every method's parameters: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Capabilities:
    needs_gradients: bool
    uses_layer: bool
    convergence_delta: bool
    multiplies_by_inputs: bool
    output: Literal["pixel", "cam"]


@dataclass(frozen=True)
class Cost:
    """Model passes per image; `driver` names the parameter that scales them (for limit errors)."""

    forward: int
    backward: int
    driver: str | None = None


@dataclass(frozen=True)
class PixelSpace:
    """How model-input space relates to pixels in [0, 1]: x = (pixel - mean) / std per channel."""

    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def from_pixels(self, pixels: Tensor) -> Tensor:
        mean = torch.tensor(self.mean, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels.device, dtype=pixels.dtype).view(1, -1, 1, 1)
        return (pixels - mean) / std


@dataclass(frozen=True)
class ExplainContext:
    objective: Objective = "logit"
    chunk_size: int = 64
    pixel_space: PixelSpace = field(default_factory=PixelSpace)
    layer: str | None = None  # CAM methods: module name; None = found automatically

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")


@dataclass
class Explanation:
    attributions: Tensor  # (N, C, H, W) or (N, H, W), float32
    logits: Tensor  # (N, K) of the clean inputs, from a pass the method ran anyway
    targets: Tensor  # (N,) the classes explained
    diagnostics: dict[str, Tensor] = field(default_factory=dict)  # name -> (N,)


class Explainer(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[Params]]
    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def cost(self, params: Params, input_size: tuple[int, int]) -> Cost: ...

    @abstractmethod
    def explain(
        self, model: nn.Module, x: Tensor, targets: Tensor | None, params: Params, ctx: ExplainContext
    ) -> Explanation:
        """targets=None (or a negative entry) explains the row's predicted (top) class."""


def chunks(n_rows: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, size):
        yield start, min(start + size, n_rows)


def score(logits: Tensor, targets: Tensor, objective: Objective) -> Tensor:
    """S per row: the objective of the row's target class."""
    if objective == "probability":
        logits = logits.softmax(dim=1)
    elif objective == "log_probability":
        logits = logits.log_softmax(dim=1)
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def resolve(logits: Tensor, targets: Tensor | None) -> Tensor:
    """The class each row explains: its given target, or its top class where the target is None or < 0."""
    if targets is None:
        return logits.argmax(dim=1)
    # Negative entries let one batch mix "predicted" rows with explicit ones (requests batched together).
    return torch.where(targets < 0, logits.argmax(dim=1), targets)


def input_gradients(
    model: nn.Module, x: Tensor, targets: Tensor | None, objective: Objective
) -> tuple[Tensor, Tensor, Tensor]:
    """One forward+backward on the rows of x: (logits, targets, dS/dx).

    autograd.grad w.r.t. the input only, so the model's parameters never collect `.grad`.
    """
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        logits = model(xr)
        t = resolve(logits, targets)
        (grad,) = torch.autograd.grad(score(logits, t, objective).sum(), xr)
    return logits.detach(), t, grad


def forward_scores(
    model: nn.Module, x: Tensor, targets: Tensor | None, ctx: ExplainContext
) -> tuple[Tensor, Tensor, Tensor]:
    """Chunked forward passes without autograd: (logits, targets, S)."""
    logits, scores, resolved = [], [], []
    with torch.inference_mode():
        for start, stop in chunks(x.shape[0], ctx.chunk_size):
            out = model(x[start:stop])
            t = resolve(out, None if targets is None else targets[start:stop])
            logits.append(out)
            resolved.append(t)
            scores.append(score(out, t, ctx.objective))
    return torch.cat(logits).clone(), torch.cat(resolved).clone(), torch.cat(scores).clone()


RowMaker = Callable[[int, int], tuple[Tensor, Tensor]]


def accumulate_gradients(
    model: nn.Module, n_rows: int, make_rows: RowMaker, ctx: ExplainContext, consume: Callable
) -> None:
    """Forward+backward over `n_rows` virtual rows, `chunk_size` at a time.

    make_rows(start, stop) -> (inputs, targets) builds only the rows of one chunk, so SmoothGrad samples or
    IG steps of several images share chunks and memory stays bounded; consume(start, stop, grads) folds
    each chunk's gradients into the caller's accumulators. Row bounds are Python ints, so building the
    index of a chunk needs no host sync on CUDA.
    """
    for start, stop in chunks(n_rows, ctx.chunk_size):
        inputs, targets = make_rows(start, stop)
        _, _, grads = input_gradients(model, inputs, targets, ctx.objective)
        consume(start, stop, grads)
