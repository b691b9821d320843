"""The plan protocol: a method says which rows it needs and what to do with their results.

A plan is a generator. Each `yield` hands over a `Rows` group: how many rows, how to build a chunk of them,
which gradients a pass must produce, and how to fold a chunk's `PassOutput` into the method's accumulators.
The plan resumes once every row of the group is consumed, and `return`s its result. Methods never loop over
chunks themselves: the scheduler decides which rows, of which plans, share each pass (policy.py).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from ..models.detection import affinity

Objective = Literal["logit", "probability", "log_probability"]  # what a request to a classifier explains
# What a pass scores: a classifier's objective, or "affinity" for a detector's rows, whose outputs are
# detections and whose targets are boxes (models/detection.py).
Scoring = Objective | Literal["affinity"]
AttentionNeed = Literal["", "probabilities", "gradients"]
ATTENTION_NEEDS: tuple[AttentionNeed, ...] = ("", "probabilities", "gradients")  # each includes the one before
OBJECTIVES: tuple[str, ...] = ("logit", "probability", "log_probability")
TOP = -1  # the target that means "this row's top class": the one meaning of "predicted" in the engine
RowMaker = Callable[[int, int], tuple[Tensor, Tensor]]  # (start, stop) -> inputs (n, ...), targets (n,) or TOP


@dataclass
class PassOutput:
    """What one pass computed for a run of rows (all on the rows' device)."""

    logits: Tensor  # (n, K)
    targets: Tensor  # (n,) the classes scored: negative targets resolved to the row's top class
    scores: Tensor  # (n,) the objective of the target class
    input_grads: Tensor | None = None  # (n, C, H, W) dS/dx, when the rows asked for it
    activations: dict[str, Tensor] = field(default_factory=dict)  # layer -> (n, ...) output of that layer
    layer_grads: dict[str, Tensor] = field(default_factory=dict)  # layer -> dS/d(output of that layer)
    attentions: list[Tensor] = field(default_factory=list)  # per attention call: (n, heads, T, T) probabilities
    attention_grads: list[Tensor] = field(default_factory=list)  # dS/d(those probabilities), when asked for

    @property
    def grads(self) -> Tensor:
        """dS/dx, which rows that asked for `input_grad` always have."""
        assert self.input_grads is not None, "the rows did not ask for input gradients"
        return self.input_grads

    def rows(self, start: int, stop: int, length: int | None = None) -> PassOutput:
        """Rows start:stop; `length` trims padded text rows back to their own length."""
        return PassOutput(
            self.logits[start:stop],
            self.targets[start:stop],
            self.scores[start:stop],
            None if self.input_grads is None else self.input_grads[start:stop, :length],
            {k: v[start:stop] for k, v in self.activations.items()},
            {k: v[start:stop] for k, v in self.layer_grads.items()},
            [a[start:stop] for a in self.attentions],
            [g[start:stop] for g in self.attention_grads],
        )


@dataclass
class Rows:
    """A group of rows a plan needs before it can go on.

    `clean` rows are exactly the request's inputs with its targets: plans of one request (several methods)
    share them, so gradient, input x gradient and the CAM methods cost one forward and one backward together.
    """

    count: int
    make: RowMaker
    consume: Callable[[int, int, PassOutput], None]
    input_grad: bool = False
    layers: tuple[str, ...] = ()
    clean: bool = False
    guided: bool = False  # backward through ReLUs passes positive gradients only (guided backprop)
    activations: tuple[str, ...] = ()  # layers whose outputs the pass records, without gradients
    attention: AttentionNeed = ""  # the attention probabilities, and dS/d(them) (engine/attention.py)
    # A causal LM's KV-cached generation rows (models/kv_cache.py): the pass calls module.cached, forward only,
    # and shares passes only with other cached rows.
    cached: bool = False

    @property
    def needs_backward(self) -> bool:
        return self.input_grad or bool(self.layers) or self.attention == "gradients"


Plan = Generator[Rows, None, object]


def pass_over(
    x: Tensor,
    targets: Tensor,
    *,
    clean: bool = False,
    input_grad: bool = False,
    layers: tuple[str, ...] = (),
    guided: bool = False,
    activations: tuple[str, ...] = (),
    attention: AttentionNeed = "",
    cached: bool = False,
) -> Generator[Rows, None, PassOutput]:
    """Yields one pass over the rows of x and returns its output, whole (use with `yield from`)."""
    parts: list[tuple[int, PassOutput]] = []

    def make(start: int, stop: int) -> tuple[Tensor, Tensor]:
        return x[start:stop], targets[start:stop]

    def consume(start: int, _stop: int, out: PassOutput) -> None:
        parts.append((start, out))

    yield Rows(
        len(x),
        make,
        consume,
        input_grad=input_grad,
        layers=layers,
        clean=clean,
        guided=guided,
        activations=activations,
        attention=attention,
        cached=cached,
    )
    return concat([out for _, out in sorted(parts, key=lambda p: p[0])])


def clean_rows(
    x: Tensor,
    targets: Tensor,
    *,
    input_grad: bool = False,
    layers: tuple[str, ...] = (),
    activations: tuple[str, ...] = (),
    attention: AttentionNeed = "",
) -> Generator[Rows, None, PassOutput]:
    """One pass over the request's own inputs and targets (shared by the request's methods); `activations`
    names layers whose outputs it records without gradients, so a forward-only method's pass stays forward-only."""
    return pass_over(
        x, targets, clean=True, input_grad=input_grad, layers=layers, activations=activations, attention=attention
    )


def concat(parts: list[PassOutput]) -> PassOutput:
    def cat(values: list[Tensor | None]) -> Tensor | None:
        return None if values[0] is None else torch.cat([v for v in values if v is not None])

    first = parts[0]
    return PassOutput(
        torch.cat([p.logits for p in parts]),
        torch.cat([p.targets for p in parts]),
        torch.cat([p.scores for p in parts]),
        cat([p.input_grads for p in parts]),
        {k: torch.cat([p.activations[k] for p in parts]) for k in first.activations},
        {k: torch.cat([p.layer_grads[k] for p in parts]) for k in first.layer_grads},
        [torch.cat([p.attentions[i] for p in parts]) for i in range(len(first.attentions))],
        [torch.cat([p.attention_grads[i] for p in parts]) for i in range(len(first.attention_grads))],
    )


def targets_or_top(targets: Tensor | None, n: int, device: torch.device) -> Tensor:
    """The canonical target vector: TOP marks "the row's top class"."""
    if targets is None:
        return torch.full((n,), TOP, dtype=torch.long, device=device)
    return targets


def score(logits: Tensor, targets: Tensor, objective: Scoring) -> Tensor:
    """S per row: the objective of the row's target class (a detector's: the target box's affinity)."""
    if objective == "affinity":
        return affinity(logits, targets)
    if objective == "probability":
        logits = logits.softmax(dim=1)
    elif objective == "log_probability":
        logits = logits.log_softmax(dim=1)
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def resolve(logits: Tensor, targets: Tensor | None) -> Tensor:
    """The class each row explains: its given target, or its top class where the target is None or TOP."""
    if targets is None:
        return logits.argmax(dim=1)
    if targets.dim() > 1:
        return targets  # boxes (a detector's rows): explained as given
    # TOP entries let one batch mix "predicted" rows with explicit ones (requests batched together).
    return torch.where(targets == TOP, logits.argmax(dim=1), targets)
