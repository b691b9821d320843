"""Deletion and insertion (Petsiuk et al. 2018, RISE's CausalMetric): how much a map's ranking of the pixels
moves the model, next to what a random ranking does.

- The score is the softmax probability of the explained class, whatever the request's objective; a detector's
  row scores its box by the affinity every detection method uses (models/detection.py).
- Pixels are ranked by the map after channel reduction, descending, ties broken by pixel index; each of
  `steps` steps moves ceil(H * W / steps) pixels.
- Deletion starts from the image and replaces ranked pixels, most salient first, by the black baseline;
  insertion starts from the image blurred with gaussian_blur(kernel_size=11, sigma=5) in model-input space and
  puts ranked pixels back.
- The curve has steps + 1 scores; its AUC is the trapezoid rule on [0, 1]: (sum(s) - s_0 / 2 - s_n / 2) / n.
  Lower is better for deletion, higher for insertion. `random_auc` is the same for a seeded random ranking.

For text models the positions are the user's tokens (special tokens and padding stay), ranked by the
text codec's per-token scores; deletion replaces them by the mask token at the attributed layer (the pad
token where the tokenizer has none) and insertion starts with all of them masked.

The perturbed inputs are forward-only rows, scheduled and packed like occlusion's: the explanation's plan
goes on with them, so they share passes with every other request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from ..engine.plan import PassOutput, Plan, Rows
from .base import Explanation, PixelSpace
from .postprocess import Reduce, reduce_channels
from .text_space import TextSpace, token_scores

Metric = Literal["deletion", "insertion"]
MAX_STEPS = 256


class EvaluateSpec(BaseModel):
    """What a client asks to be measured of each map (`evaluate` in an explain request)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    metrics: list[Metric] = Field(min_length=1, max_length=2, description="deletion and/or insertion.")
    steps: int = Field(32, ge=1, le=MAX_STEPS, description="Steps of each curve (steps + 1 forward passes).")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the random ranking behind random_auc.")

    def rows_per_image(self) -> int:
        """Forward passes per image and method: each metric's curve for the map's ranking and a random one."""
        return len(set(self.metrics)) * 2 * (self.steps + 1)


def auc(curve: Tensor) -> Tensor:
    """(N, steps + 1) -> (N,): the trapezoid rule with the x-axis scaled to [0, 1]."""
    n = curve.shape[1] - 1
    return (curve.sum(dim=1) - curve[:, 0] / 2 - curve[:, -1] / 2) / n


def ranking(maps: Tensor) -> Tensor:
    """(N, H, W) -> (N, H * W) each pixel's place in the ranking: 0 for the most salient, ties by index."""
    order = torch.sort(maps.flatten(1), dim=1, descending=True, stable=True).indices
    places = torch.empty_like(order)
    places.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return places


def random_ranking(n: int, pixels: int, seed: int, device: torch.device) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(pixels, generator=generator) for _ in range(n)]).to(device)


def evaluated(plan: Plan, x: Tensor, space: PixelSpace | TextSpace, reduce: Reduce, spec: EvaluateSpec) -> Plan:
    """The method's plan, then the rows of its faithfulness curves; the Explanation gains `faithfulness`."""
    result = yield from plan
    assert isinstance(result, Explanation)
    if isinstance(space, TextSpace):
        where = text_positions(x, result, space, reduce)
    else:
        where = pixels(x, result, space, reduce)
    per_step = torch.div(where.movable + spec.steps - 1, spec.steps, rounding_mode="floor")  # ceil(P / steps)
    targets = result.targets.to(x.device)
    ranked = {"map": ranking(where.scores), "random": where.random(spec.seed)}
    out: dict[str, dict[str, Tensor]] = {}
    for metric in dict.fromkeys(spec.metrics):
        start, end = (x, where.removed) if metric == "deletion" else (where.inserted_from, x)
        curves = {}
        for name, places in ranked.items():
            curves[name] = yield from curve(start, end, places, per_step, spec.steps, targets, where.spread)
        out[metric] = {"auc": auc(curves["map"]), "random_auc": auc(curves["random"]), "curve": curves["map"]}
    result.faithfulness = {m: {k: v.cpu() for k, v in values.items()} for m, values in out.items()}
    return result


@dataclass
class Positions:
    """What deletion and insertion move: pixels of an image, or the user's tokens of a text."""

    scores: Tensor  # (N, P) the map per position; positions that never move hold -inf (ranked last)
    movable: Tensor  # (N,) how many positions each input has to move
    removed: Tensor  # the inputs with every position removed: deletion's end
    inserted_from: Tensor  # insertion's start
    random: Callable[[int], Tensor]  # seed -> (N, P) a random ranking of the movable positions first
    spread: Callable[[Tensor], Tensor]  # (rows, P) bool -> a mask that broadcasts over the inputs' rows


def pixels(x: Tensor, result: Explanation, pixel_space: PixelSpace, reduce: Reduce) -> Positions:
    """Pixels ranked by the reduced map; removed: the black baseline; inserted into the blurred image."""
    attributions = result.attributions
    maps = attributions if attributions.dim() == 3 else reduce_channels(attributions, reduce)
    if maps.dim() != 3:  # reduce="none": rank by the largest magnitude per pixel, as the overlay shows it
        maps = maps.abs().amax(dim=1)
    n, height, width = maps.shape
    return Positions(
        maps.flatten(1).to(x.device),
        torch.full((n,), height * width, device=x.device),
        pixel_space.from_pixels(torch.zeros_like(x)),
        TF.gaussian_blur(x, kernel_size=[11, 11], sigma=[5.0, 5.0]),
        lambda seed: random_ranking(n, height * width, seed, x.device),
        lambda moved: moved.view(len(moved), 1, height, width),
    )


def text_positions(x: Tensor, result: Explanation, space: TextSpace, reduce: Reduce) -> Positions:
    """The user's tokens ranked by their scores (special tokens and padding never move); removed: replaced
    by the mask token (the pad token where the tokenizer has none), in the attributed layer's values."""
    real = space.real(x)
    attributions = result.attributions.to(x.device)
    scores = token_scores(attributions, reduce)
    scores = scores.norm(dim=-1) if scores.dim() == 3 else scores  # reduce="none": rank by the norm
    scores = torch.where(real, scores.float(), torch.full_like(scores.float(), -math.inf))
    masked = space.replaced(x, real, "mask" if space.mask_token is not None else "pad")

    def random(seed: int) -> Tensor:
        keys = torch.rand(real.shape, generator=torch.Generator().manual_seed(seed)).to(x.device)
        return ranking(torch.where(real, keys, torch.full_like(keys, -math.inf)))

    return Positions(scores, real.sum(dim=1), masked, masked, random, lambda moved: moved[..., None])


def curve(
    start: Tensor,
    end: Tensor,
    places: Tensor,
    per_step: Tensor,
    steps: int,
    targets: Tensor,
    spread: Callable[[Tensor], Tensor],
    score: Callable[[PassOutput, Tensor], Tensor] | None = None,
) -> Generator[Rows, None, Tensor]:
    """(N, steps + 1) probabilities of the targets as ranked positions move from `start` to `end`; or what
    `score(pass output, the inputs of its rows)` says (a causal LM's: the answer's log-probability)."""
    k = steps + 1
    scores = torch.zeros((len(start), k), device=start.device)

    def make(first: int, stop: int) -> tuple[Tensor, Tensor]:
        rows = torch.arange(first, stop, device=start.device)
        images, step = rows // k, rows % k
        moved = spread(places[images] < (step * per_step[images])[:, None])  # (rows, positions), spread
        return torch.where(moved, end[images], start[images]), targets[images]

    def consume(first: int, stop: int, out: PassOutput) -> None:
        rows = torch.arange(first, stop, device=start.device)
        if score is not None:
            probs = score(out, rows // k).float()
        elif out.targets.dim() > 1:  # boxes: the pass scored them by their affinity
            probs = out.scores.float()
        else:
            probs = out.logits.float().softmax(dim=1).gather(1, out.targets.view(-1, 1))[:, 0]
        scores[rows // k, rows % k] = probs

    yield Rows(len(start) * k, make, consume)  # forward only
    return scores
