"""Detectors' images: decoded as any image's (letterboxed, see transforms.py); rendered one map per box.

A detector's explanation has a map per (image, box) (explainers/detectors.py). Each box's maps are rendered
as an image's are (arrays, heatmaps, overlays at the original size), the overlay with that box drawn and
labelled on it; `combined_overlay` draws every box of an image over the maximum of their scaled maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...explainers import Explainer, Explanation
from ...explainers.postprocess import normalize, reduce_channels
from ...models import LoadedModel
from ...settings import Settings
from ..options import OutputOptions
from . import ImageCodec, admission
from . import maps as saliency_codec
from .render import b64, render

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))
Drawn = tuple[tuple[float, float, float, float], int, str]  # a box in original pixels, its class, its caption


class DetectionCodec(ImageCodec):
    kind = "detection"

    def admit(self, raw, loaded: LoadedModel, settings: Settings, methods: list[Explainer], output):
        data, headers = admission.inspect(list(raw), settings)
        work = admission.Work.of(methods, loaded.spec, output)
        # Every box's maps, and the combined overlay, are made at the original size one at a time; the maps
        # at input size are held for all boxes together.
        admission.admit(headers, replace(work, maps=work.maps * loaded.boxes_per_image + 1), settings)
        return data

    def render_boxes(
        self,
        batch,
        results: list[Explanation],
        explainers: list[Explainer],
        output: OutputOptions,
        drawn: list[list[Drawn]],
    ) -> list[list[list[dict]]]:
        """Per image, per box, per method: the map fields; results' attributions are (N, B, ...)."""
        where = [(i, b) for i, boxes in enumerate(drawn) for b in range(len(boxes))]
        if not where:  # no box in any image: nothing to render
            return [[] for _ in drawn]
        items = [batch.items[i] for i, _ in where]

        def pick(values: torch.Tensor) -> torch.Tensor:
            return torch.stack([values[i, b] for i, b in where])

        flat = [
            Explanation(
                pick(r.attributions),
                r.logits,
                r.targets,
                {k: pick(v) for k, v in r.diagnostics.items()},
                {m: {k: pick(v) for k, v in values.items()} for m, values in r.faithfulness.items()},
            )
            for r in results
        ]
        fields = render(items, flat, explainers, output, lambda k, p: boxed(p, [drawn[where[k][0]][where[k][1]]]))
        out: list[list[list[dict]]] = [[] for _ in drawn]
        for (i, _), per_method in zip(where, fields, strict=True):
            out[i].append(per_method)
        return out


def combined_overlay(
    picture: Image.Image, maps: np.ndarray, geometry, drawn: list[Drawn], output: OutputOptions
) -> str:
    """Every box of one image on the maximum of their maps (each min-max scaled at the original size)."""
    filled = output.filled(*admission.DEFAULTS)
    if len(maps):
        reduced = reduce_channels(torch.from_numpy(maps).float(), filled.reduce)
        at_original = normalize(saliency_codec.to_original_size(reduced, geometry), "minmax").amax(dim=0).numpy()
    else:
        at_original = np.zeros((picture.height, picture.width), dtype=np.float32)
    png = saliency_codec.overlay_png(boxed(picture, drawn), at_original, filled.colormap, filled.alpha, False)
    return b64(png)


def boxed(picture: Image.Image, drawn: Sequence[Drawn]) -> Image.Image:
    """A copy of the picture with each box outlined in its class's colour and captioned."""
    out = picture.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(2, min(out.size) // 160)
    for (x0, y0, x1, y1), index, caption in drawn:
        colour = PALETTE[index % len(PALETTE)]
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((x0, y0), caption)
        lift = bottom - top + 2 * width
        at = (x0, y0 - lift if y0 >= lift else y0)
        draw.rectangle((at[0], at[1], at[0] + right - left + 2 * width, at[1] + lift), fill=colour)
        draw.text((at[0] + width, at[1] + width), caption, fill=(0, 0, 0))
    return out
