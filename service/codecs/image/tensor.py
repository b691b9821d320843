"""Image models fed tensors already in model-input space: (C, H, W) float32 arrays, no picture to decode.

The Open Inference Protocol's FP32 input arrives this way. Everything after decoding is the image codec's:
maps at the input size, the same rendering, the same reductions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...errors import InvalidInput
from ...explainers import Explainer
from ...models import LoadedModel
from ...settings import Settings
from ..base import Batch
from ..options import OutputOptions
from . import ImageCodec, admission
from .transforms import Geometry

FLOAT_BYTES = 4


class TensorCodec(ImageCodec):
    # A subclass for the rendering side, which is the image codec's; its inputs are arrays, not files
    # (hence Sequence[Any] where ImageCodec has bytes or base64 text).
    field = "input"

    def admit(
        self,
        raw: Sequence[Any],
        loaded: LoadedModel,
        settings: Settings,
        methods: list[Explainer],
        output: OutputOptions | None,
    ) -> list[Any]:
        """Each input (C, H, W) as the model takes it, finite, within the image limits."""
        spec = loaded.spec
        expected = (spec.channels, *spec.input_size)
        if not raw:
            raise InvalidInput("no inputs", self.field)
        if len(raw) > settings.max_images:
            raise InvalidInput(f"{len(raw)} inputs, over the limit of {settings.max_images}", self.field)
        for i, item in enumerate(raw):
            if item.dtype != np.float32 or item.shape != expected:
                raise InvalidInput(
                    f"input {i} is {item.dtype} {list(item.shape)}; model {spec.name!r} takes float32 "
                    f"[{', '.join(map(str, expected))}] (channels, height, width) in its input space",
                    self.field,
                )
            if not np.isfinite(item).all():
                raise InvalidInput(f"input {i} has values that are not finite (NaN or infinity)", self.field)
        if output is not None and output.overlay:
            raise InvalidInput("an overlay needs the original picture; tensor inputs have none", "output.overlay")
        # Admission counts a tensor as a picture of its size with 4-byte pixels: the same limits as images.
        nbytes = FLOAT_BYTES * math.prod(expected)
        header = admission.Header(spec.input_size[1], spec.input_size[0], "F", "tensor", nbytes)
        admission.admit([header] * len(raw), admission.Work.of(methods, spec, output), settings)
        return list(raw)

    def decode(
        self, admitted: Sequence[Any], loaded: LoadedModel, settings: Settings, output: OutputOptions | None
    ) -> Batch:
        height, width = loaded.spec.input_size
        # The whole input is what the model sees: "original" size is the input size.
        geometry = Geometry(width, height, (0.0, 0.0, float(width), float(height)))
        return Batch(torch.from_numpy(np.stack(admitted)), [(None, geometry) for _ in admitted])
