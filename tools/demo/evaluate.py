"""Measures the demo models: accuracy, pointing game per method, and how often the watermark model looks
at its watermark. `python -m tools.demo.evaluate` prints the table that the README shows."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from service.core.plans import explain_here
from service.demo import shapes
from service.engine.plan import TOP
from service.explainers import default_registry
from service.explainers.postprocess import reduce_channels
from service.models import ModelPool, load_config
from service.settings import DEMO_CONFIG, Settings

# Cheap settings of the costly methods, so the measurement runs in seconds; defaults elsewhere.
METHODS = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"samples": 16, "seed": 0},
    "smoothgrad_sq": {"samples": 16, "seed": 0},
    "vargrad": {"samples": 16, "seed": 0},
    "integrated_gradients": {"steps": 16},
    "gradcam": {},
    "gradcam_pp": {},
    "occlusion": {"window": 16, "stride": 8},
}
TOLERANCE_PX = 3  # a peak this close to the shape still counts as on it (maps are smooth at edges)


@dataclass
class Row:
    method: str
    hit_rate: float  # peak inside the (dilated) shape mask
    random_rate: float  # what a random map scores: the mean dilated-mask area fraction
    watermark_rate: float  # watermark model on watermarked circles: peak on the watermark
    clean_watermark_rate: float  # the clean model on the same images, for contrast


def peaks(maps: torch.Tensor) -> np.ndarray:
    """(N, H, W) -> (N, 2) row, col of each map's maximum."""
    flat = maps.flatten(1).argmax(dim=1).numpy()
    return np.stack(np.unravel_index(flat, maps.shape[1:]), axis=1)


def grow(regions: np.ndarray) -> np.ndarray:
    """Dilates (N, H, W) boolean masks by TOLERANCE_PX (a square structuring element)."""
    t = TOLERANCE_PX
    return (F.max_pool2d(torch.from_numpy(regions).float()[:, None], 2 * t + 1, stride=1, padding=t) > 0)[:, 0].numpy()


def on_region(points: np.ndarray, regions: np.ndarray) -> np.ndarray:
    return grow(regions)[np.arange(len(points)), points[:, 0], points[:, 1]]


def saliency(pool: ModelPool, model: str, method: str, images: np.ndarray, chunk: int = 256) -> torch.Tensor:
    loaded = pool.get(model)
    explainer, params = default_registry().parse({"name": method, **METHODS[method]})
    x = shapes.to_tensor(images)
    top = torch.full((len(x),), TOP, dtype=torch.long)
    result = explain_here(loaded, explainer, params, x, top, "logit", Settings(device="cpu", chunk_size=chunk))
    return reduce_channels(result.attributions, "max_abs")


def accuracy(pool: ModelPool, model: str, samples: shapes.Samples) -> float:
    with torch.inference_mode():
        logits = pool.get(model).module(shapes.to_tensor(samples.images))
    return float((logits.argmax(1).numpy() == samples.labels).mean())


def evaluate(n: int = 200, seed: int = 90210, methods: list[str] | None = None) -> tuple[dict, list[Row]]:
    torch.set_grad_enabled(True)
    pool = ModelPool(load_config(DEMO_CONFIG), device="cpu")
    clean = shapes.generate(n, seed)
    marked = shapes.generate(n, seed + 1, watermark_class=0, watermark_prob=1.0)
    circles = marked.labels == 0
    others_marked = shapes.generate(n, seed + 2, watermark_all=True)
    summary = {
        "shapes accuracy (clean)": accuracy(pool, "shapes", clean),
        "shapes-watermark accuracy (clean)": accuracy(pool, "shapes-watermark", clean),
        "shapes-watermark predicts circle when a non-circle carries the watermark": float(
            (pool.get("shapes-watermark").module(shapes.to_tensor(others_marked.images)).argmax(1).numpy() == 0)[
                others_marked.labels != 0
            ].mean()
        ),
    }
    grown = grow(clean.masks)
    rows = []
    for method in methods or list(METHODS):
        hits = on_region(peaks(saliency(pool, "shapes", method, clean.images)), clean.masks)
        on_mark = [
            on_region(peaks(saliency(pool, model, method, marked.images[circles])), marked.watermarks[circles]).mean()
            for model in ("shapes-watermark", "shapes")
        ]
        rows.append(Row(method, float(hits.mean()), float(grown.mean()), float(on_mark[0]), float(on_mark[1])))
    return summary, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    summary, rows = evaluate(args.n)
    for name, value in summary.items():
        print(f"- {name}: {value:.1%}")
    print(
        "\n| method | pointing game: peak on the shape (`shapes`) | random map | peak on the watermark, "
        "watermarked circles: `shapes-watermark` | same images: `shapes` |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.method} | {r.hit_rate:.1%} | {r.random_rate:.1%} | {r.watermark_rate:.1%} "
            f"| {r.clean_watermark_rate:.1%} |"
        )


if __name__ == "__main__":
    main()
