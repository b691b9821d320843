"""Does the watermark detector's circle box look at the badge? `python -m tools.demo.detector_watermark`.

On generated scenes in which every circle carries the badge (scenes.py "circles"), each ground-truth circle
box is explained by both demo detectors, as the server explains it (the served model, its plans through the
engine), and the table gives, per method and detector, how often the map's peak is on the circle's badge
(the pointing game: the 10x10 badge grown by 2 px) and the mean share of the map's mass on the badge (the map
less its minimum, so that D-RISE's constant part, the mean mask, does not count; a uniform map puts 0.6 %
there).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from service import engine
from service.codecs.image.transforms import Geometry
from service.core.boxes import box_table
from service.demo import scenes
from service.explainers import ExplainContext, PixelSpace
from service.explainers.detectors import box_plan
from service.explainers.registry import default_registry
from service.models import ModelPool, load_config

from .catalog import DEMO_DIR, DETECTORS

METHODS = ({"name": "drise", "masks": 500}, "gradient", {"name": "integrated_gradients", "steps": 16}, "gradcam")


def flat(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) -> (H, W): the sum over channels, less its minimum."""
    mass = maps.sum(axis=0) if maps.ndim == 3 else maps
    return mass - mass.min()


def badge_share(maps: np.ndarray, badge: np.ndarray) -> float:
    """The share of the map's mass (less its minimum) inside the badge box."""
    mass = flat(maps)
    x0, y0, x1, y1 = badge
    total = float(mass.sum())
    return float(mass[y0:y1, x0:x1].sum()) / total if total > 0 else 0.0


def peak_on(maps: np.ndarray, badge: np.ndarray, grow: int = 2) -> bool:
    """Whether the map's peak is on the badge, grown by `grow` px (the pointing game)."""
    mass = flat(maps)
    y, x = np.unravel_index(int(np.argmax(mass)), mass.shape)
    x0, y0, x1, y1 = badge
    return bool(x0 - grow <= x < x1 + grow and y0 - grow <= y < y1 + grow)


def measure(n: int, seed: int, methods=METHODS) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(model, method) -> (share of peaks on the badge, mean mass share on it, circle boxes)."""
    pool = ModelPool(load_config(DEMO_DIR / "models.toml"), device="cpu")
    registry = default_registry()
    found = scenes.generate(n, seed, "circles")
    keep = [i for i in range(n) if (found.labels[i] == scenes.CIRCLE).any()]
    x = scenes.to_tensor(found.images[keep])
    circles = [found.boxes[i][found.labels[i] == scenes.CIRCLE] for i in keep]
    badges = [found.badges[i] for i in keep]  # one per circle, in the same order
    out = {}
    for name in DETECTORS:
        loaded = pool.get(name)
        ctx = ExplainContext(PixelSpace(), loaded.default_layer, loaded.layouts, loaded.refused_layers)
        targets = [[(box.tolist(), scenes.CIRCLE) for box in image] for image in circles]
        whole = Geometry(scenes.IMAGE_SIZE, scenes.IMAGE_SIZE, (0.0, 0.0, scenes.IMAGE_SIZE, scenes.IMAGE_SIZE))
        table = box_table(targets, [whole] * len(x), loaded)  # the scenes are the input size: boxes as they are
        for spec in methods:
            explainer, params = registry.parse(spec, "detection")
            plan = box_plan(explainer, loaded.module, x, table, params, ctx)
            (result,) = engine.run(loaded.module, [plan], "affinity", chunk_size=64)
            pairs = [
                (result.attributions[i, j].numpy(), badges[i][j]) for i in range(len(x)) for j in range(len(circles[i]))
            ]
            peaks = [peak_on(maps, badge) for maps, badge in pairs]
            shares = [badge_share(maps, badge) for maps, badge in pairs]
            out[name, explainer.name] = (float(np.mean(peaks)), float(np.mean(shares)), len(pairs))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=96_000)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.perf_counter()
    found = measure(args.scenes, args.seed)
    names = list(dict.fromkeys(method for _, method in found))
    heads = [f"`{d}`: peak on the badge | mass on it" for d in DETECTORS]
    print("| method | " + " | ".join(heads) + " |")
    print("|---|" + "---|---|" * len(DETECTORS))
    for method in names:
        cells = [f"{100 * found[d, method][0]:.0f} % | {100 * found[d, method][1]:.1f} %" for d in DETECTORS]
        print(f"| {method} | " + " | ".join(cells) + " |")
    boxes = found[DETECTORS[0], names[0]][2]
    print(f"\n{boxes} circle boxes in {args.scenes} scenes (seed {args.seed}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
