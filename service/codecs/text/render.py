"""Explanations -> each text's fields: per-token scores, the score array and a highlighted HTML fragment."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from matplotlib import colormaps

from ...explainers import Explainer, Explanation
from ...explainers.postprocess import Normalize, Reduce, normalize
from ...explainers.text_space import token_scores
from ..arrays import encode_array
from ..base import faithfulness
from ..options import OutputOptions

DIVERGING = "RdBu_r"  # blue for scores against the class, red for scores for it, white at 0


def defaults(explainer: Explainer) -> tuple[Reduce, Normalize]:
    """Signed sums for methods that multiply by the input (Captum's convention), the L2 norm of the gradient
    for the others; scores scaled to [-1, 1] keeping their sign."""
    return ("sum" if explainer.capabilities.multiplies_by_inputs else "l2"), "percentile"


def render(
    items: list[dict[str, Any]], results: list[Explanation], explainers: list[Explainer], given: OutputOptions
) -> list[list[dict[str, Any]]]:
    prepared = []
    for result, explainer in zip(results, explainers, strict=True):
        out = given.filled(*defaults(explainer))
        prepared.append((result, token_scores(result.attributions.float(), out.reduce), out))
    rendered = []
    for i, item in enumerate(items):
        length = len(item["tokens"])
        per_method = []
        for result, scores, out in prepared:
            raw = scores[i, :length]
            shown = normalize(raw[None], out.normalize)[0].numpy()
            signed = out.normalize == "percentile" or (out.normalize == "none" and out.reduce in ("sum", "none"))
            per_token = shown if shown.ndim == 1 else None
            per_method.append(
                {
                    "saliency": encode_array(shown, out.saliency, signed),
                    "tokens": tokens(item, per_token),
                    "html": highlighted(item, per_token, signed) if out.html and per_token is not None else None,
                    "heatmap_png": None,
                    "overlay_png": None,
                    "diagnostics": {k: v[i].item() for k, v in result.diagnostics.items()},
                    "faithfulness": faithfulness(result, i),
                }
            )
        rendered.append(per_method)
    return rendered


def tokens(item: dict[str, Any], scores: np.ndarray | None) -> list[dict[str, Any]]:
    """Every token the model saw, in order; special tokens have no place in the text."""
    out = []
    for j, (token, (start, end), special) in enumerate(
        zip(item["tokens"], item["offsets"], item["special"], strict=True)
    ):
        out.append(
            {
                "text": token if special else item["text"][start:end],
                "start": None if special else start,
                "end": None if special else end,
                "special": special,
                "score": None if scores is None else float(scores[j]),
            }
        )
    return out


def highlighted(item: dict[str, Any], scores: np.ndarray, signed: bool) -> str:
    """The text with each token on a background from a diverging colormap; all of the text is escaped."""
    text, cmap = item["text"], colormaps[DIVERGING]
    peak = float(np.abs(scores).max()) or 1.0
    parts, cursor = [], 0
    for (start, end), special, score in zip(item["offsets"], item["special"], scores, strict=True):
        if special or end <= start or start < cursor:
            continue
        unit = score / peak
        r, g, b, _ = cmap((unit + 1) / 2 if signed else 0.5 + unit / 2)
        colour = f"rgb({round(r * 255)}, {round(g * 255)}, {round(b * 255)})"
        parts.append(html.escape(text[cursor:start]))
        parts.append(
            f'<span class="token" style="background-color: {colour}" title="{score:.3f}">'
            f"{html.escape(text[start:end])}</span>"
        )
        cursor = end
    parts.append(html.escape(text[cursor:]))
    return '<span class="saliency-text">' + "".join(parts) + "</span>"
