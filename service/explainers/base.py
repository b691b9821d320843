"""The explainer contract and the shared machinery every method uses.

Canonical shapes only: inputs are (N, C, H, W) in model-input space, targets are (N,) int64, results are
(N, C, H, W) for pixel-space methods and (N, H, W) for CAM methods, at input resolution, unreduced.
A method is a plan (service.engine.plan): it names the rows it needs and folds their results, and the
engine runs them, so every pass is sized and shared with other requests by the scheduler. The one pass a
plan may make itself: a CAM method on a model with no known layer probes one row to find the last spatial
layer (models/layers.py); served models know theirs from load, so only scripts and tests meet it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from ..engine.plan import Plan
from ..errors import InvalidParameter
from ..models.attention import AttentionInfo
from ..models.layouts import Layout
from .text_space import TextSpace


class Params(BaseModel):
    """Base of every method's parameters: unknown fields are errors, not silently ignored.

    Strict, as the published JSON schema reads: "5", true and 5.0 are not the integer 5 (an int is a float).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Modality = Literal["image", "text", "detection", "causal_lm"]  # detection: per box (detectors.py); causal_lm:
# per answer token (causal.py)


@dataclass(frozen=True)
class Capabilities:
    """What a method does, for the registry to show clients (GET /v1/methods) and the core to check."""

    needs_gradients: bool
    uses_layer: bool
    convergence_delta: bool
    multiplies_by_inputs: bool
    output: Literal["pixel", "cam"]
    modalities: tuple[Modality, ...] = ("image",)
    guided_relu: bool = False  # backpropagates through nn.ReLU modules in its own way (guided backprop)
    uses_target: bool = True  # False: the map is the same whatever class is explained (EigenCAM)
    reads_attention: bool = False  # needs the model's attention probabilities (transformer image models)
    boxes_per_row: bool = False  # detectors: scores all of an image's boxes in one row (detectors.py)


@dataclass(frozen=True)
class Cost:
    """Model passes per image; `driver` names the parameter that scales them (for limit errors)."""

    forward: int
    backward: int
    driver: str | None = None
    # More forward passes per channel of the method's layer (Score-CAM): only the model knows the channels,
    # so `Explainer.cost_on` adds them; `forward` alone would undercount.
    forward_per_channel: int = 0


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
    """What a plan needs to know of the model's input space; the objective and the pass size are the engine's
    (engine.run, the device worker), since a plan never runs a pass."""

    pixel_space: PixelSpace = field(default_factory=PixelSpace)
    layer: str | None = None  # CAM methods: module name; None = found automatically
    layouts: Mapping[str, Layout] = field(default_factory=dict)  # the model's CAM layers; empty: probe it
    refused_layers: Mapping[str, str] = field(default_factory=dict)  # layer -> why it is no CAM layer
    attention: AttentionInfo | str | None = None  # the model's attention, or why none; None: probe it
    text: TextSpace | None = None  # text models: rows are token embeddings (see models/text.py)


@dataclass
class Explanation:
    attributions: Tensor  # (N, C, H, W) or (N, H, W), float32
    logits: Tensor  # (N, K) of the clean inputs, from a pass the method ran anyway
    targets: Tensor  # (N,) the classes explained
    diagnostics: dict[str, Tensor] = field(default_factory=dict)  # name -> (N,)
    faithfulness: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # metric -> auc, random_auc, curve


class Explainer(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[Params]]
    text_params_model: ClassVar[type[Params] | None] = None  # when text takes other parameters
    capabilities: ClassVar[Capabilities]

    def params_for(self, kind: str) -> type[Params]:
        """The parameters this method takes for a model of `kind`."""
        return self.text_params_model or self.params_model if kind in ("text", "causal_lm") else self.params_model

    @abstractmethod
    def cost(self, params: Params, input_shape: tuple[int, ...]) -> Cost:
        """Passes per input of `input_shape`: (H, W) for an image, (tokens,) for a text."""

    def cost_on(
        self,
        params: Params,
        input_shape: tuple[int, ...],
        layers: Mapping[str, tuple[int, ...]],
        default_layer: str | None,
    ) -> Cost:
        """`cost` on a model whose CAM layers output `layers` (name -> (C, h, w)), per channel passes included."""
        cost = self.cost(params, input_shape)
        if not cost.forward_per_channel:
            return cost
        layer = getattr(params, "layer", None) or default_layer
        if layer is None or layer not in layers:
            raise InvalidParameter(f"the model has no CAM layer {layer!r} to count passes on", field="method.layer")
        channels = layers[layer][0]
        return Cost(cost.forward + cost.forward_per_channel * channels, cost.backward, cost.driver)

    @abstractmethod
    def plan(self, model: nn.Module, x: Tensor, targets: Tensor, params: Params, ctx: ExplainContext) -> Plan:
        """The rows this explanation needs, returning an `Explanation`; a target of TOP is the row's top class.

        `model` is for looking things up (a layer); passes are the engine's to run.
        """
