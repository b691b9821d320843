"""Explanations -> each image's map fields: the saliency array, heatmap and overlay PNGs, diagnostics."""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np
from PIL import Image

from ...explainers import Explainer, Explanation
from ...explainers.postprocess import normalize, reduce_channels
from ..arrays import encode_array
from ..base import faithfulness
from ..options import OutputOptions
from . import admission
from . import maps as saliency_codec
from .admission import DEFAULTS


def render(
    items: list,  # (picture or None, geometry) per image; emptied as drawn, so the pixels go early
    results: list[Explanation],
    explainers: list[Explainer],
    given: OutputOptions,
    decorate: Callable[[int, Image.Image], Image.Image] | None = None,
) -> list[list[dict]]:
    """Per image, per method: the saliency array, PNGs and diagnostics the request asked for. `decorate(i,
    picture)` draws on image i's picture before its overlays (a detector's box)."""
    out = given.filled(*DEFAULTS)
    images = [picture for picture, _ in items]
    geometry = [where for _, where in items]
    prepared = []
    for result, explainer in zip(results, explainers, strict=True):
        reduced = reduce_channels(result.attributions.float(), out.reduce)
        signed = out.normalize == "percentile" or (
            out.normalize == "none" and out.reduce in ("sum", "none") and explainer.capabilities.output == "pixel"
        )
        prepared.append((result, reduced, normalize(reduced, out.normalize), signed))
    rendered = []
    for i, where in enumerate(geometry):
        if decorate is not None and out.overlay:
            images[i] = decorate(i, images[i])
        per_method = []
        for result, reduced, maps, signed in prepared:
            at_original = None
            if out.size == "original" or out.overlay:
                # Normalize after resizing, so that the map's own extremes at the original size are 0 and 1.
                resized = saliency_codec.to_original_size(reduced[i], where)[None]
                at_original = normalize(resized, out.normalize)[0].numpy()
                del resized  # admission counts one map at the original size while the outputs are made
            array = maps[i].numpy() if at_original is None or out.size == "input" else at_original
            per_method.append(
                {
                    "saliency": encode_array(array, out.saliency, signed),
                    "heatmap_png": b64(saliency_codec.heatmap_png(flat(array), out.colormap, signed))
                    if out.heatmap
                    else None,
                    "overlay_png": overlay(images[i], at_original, out, signed) if out.overlay else None,
                    "diagnostics": {k: v[i].item() for k, v in result.diagnostics.items()},
                    "faithfulness": faithfulness(result, i),
                }
            )
            del array, at_original
            admission.release_freed_memory(
                geometry[i].width * geometry[i].height if out.size == "original" or out.overlay else 0
            )
        images[i] = items[i] = None  # drawn: the decoded pixels can go
        rendered.append(per_method)
    return rendered


def overlay(picture: Image.Image | None, at_original: np.ndarray | None, out, signed: bool) -> str:
    assert picture is not None and at_original is not None  # decoded with keep=True, mapped at the original size
    return b64(saliency_codec.overlay_png(picture, flat(at_original), out.colormap, out.alpha, signed))


def flat(array: np.ndarray) -> np.ndarray:
    """A map to draw: (C, H, W) maps (reduce="none") show their largest magnitude per pixel."""
    return np.abs(array).max(axis=0) if array.ndim == 3 else array


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
