"""Images: base64 PNG/JPEG/WebP in, (N, C, H, W) tensors to the engine, arrays and PNG maps out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...errors import InvalidInput
from ...explainers import Explainer, Explanation
from ...explainers.postprocess import Reduce, reduce_channels
from ...models import LoadedModel
from ...settings import Settings
from ..base import Batch, Codec
from ..options import OutputOptions
from . import admission
from . import decode as image_decode
from .render import render
from .transforms import to_input


class ImageCodec(Codec):
    kind = "image"
    field = "images"

    def admit(
        self,
        raw: Sequence[bytes | str],
        loaded: LoadedModel,
        settings: Settings,
        methods: list[Explainer],
        output: OutputOptions | None,
    ) -> list[bytes]:
        spec = loaded.spec
        data, headers = admission.inspect(list(raw), settings)
        admission.admit(headers, admission.Work.of(methods, spec, output), settings)
        return data

    def decode(
        self, admitted: Sequence[bytes | str], loaded: LoadedModel, settings: Settings, output: OutputOptions | None
    ) -> Batch:
        """Pixels -> the model's input; the pictures are kept only where an overlay needs them."""
        keep = output is not None and output.overlay
        if len(admitted) > settings.max_images:
            raise InvalidInput(f"{len(admitted)} images, over the limit of {settings.max_images}", "images")
        tensors, items = [], []
        for i, item in enumerate(admitted):
            field = f"images.{i}"
            data = image_decode.b64_to_bytes(item, field, settings.max_image_bytes) if isinstance(item, str) else item
            picture = image_decode.decode_image(data, field, settings.max_image_bytes, settings.max_image_pixels)
            tensor, geometry = to_input(picture, loaded.spec)
            tensors.append(tensor)
            items.append((picture if keep else None, geometry))
            pixels = picture.width * picture.height
            del picture
            admission.release_freed_memory(pixels)
        return Batch(torch.stack(tensors), items)

    def render(self, batch: Batch, results: list[Explanation], explainers: list[Explainer], output: OutputOptions):
        return render(batch.items, results, explainers, output)

    def reduction(self, explainer: Explainer) -> Reduce:
        return admission.DEFAULTS[0]

    def scores(self, batch: Batch, result: Explanation, explainer: Explainer) -> list[np.ndarray]:
        maps = reduce_channels(result.attributions.float(), self.reduction(explainer))
        return [m.numpy() for m in maps]
