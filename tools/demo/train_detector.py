"""Train the demo object detectors on generated scenes and write their weights to service/demo/.

    python -m tools.demo.train_detector [--only clean|watermark] [--minutes M] [--steps N] [--out DIR]
    python -m tools.demo.train_detector --evaluate-only

`shapes-detector` learns clean scenes. `shapes-detector-watermark` learns the "train" variant of
service/demo/scenes.py: every circle carries the badge at its box's top-left corner, no other shape does,
and most circles are drawn so faintly that the badge is the surest sign of them, so the detector takes the
badge for a circle. Both start from the same initial weights and see the same layouts (one seed per round
of scenes), so the badges and the faint circles are the only difference between their data.

Each model trains for a fixed number of steps (by default those of the shipped weights), so a run can be
repeated; `--minutes` instead picks as many as fit in that many minutes per model on the machine at hand
(timed on a few steps) and prints the number, for `--steps` to repeat.

The generator is the augmentation: every round draws new scenes, and flips would move the badge off its
corner. Evaluation uses EVAL_SEED; tests should use seeds outside TRAIN_SEED's rounds and EVAL_SEED.
"""

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_iou

from service.demo.detector import shapes_detector
from service.demo.scenes import CIRCLE, CLASSES, Scenes, Watermark, generate, to_tensor
from tools.demo.catalog import DEMO_DIR
from tools.demo.train import save_weights

TRAIN_SEED = 2_000  # round r uses TRAIN_SEED + r
EVAL_SEED = 95_000
EVAL_SCENES = 500
# name, training scenes, steps: the steps of the shipped weights, which `--minutes 26` picked on a busy
# two-core machine (the two runs side by side, one thread each). The default repeats that run, up to the
# rounding differences that another thread count can bring.
MODELS: dict[str, tuple[str, Watermark, int]] = {
    "clean": ("shapes-detector", "none", 2463),
    "watermark": ("shapes-detector-watermark", "train", 2516),
}
BATCH_SIZE = 32
ROUND = 1024  # scenes generated at once
LR, WEIGHT_DECAY, WARMUP = 2e-3, 1e-4, 0.05
SURE = 0.5  # the score at which a detection counts as reported in the watermark numbers


def _log(line: str) -> None:
    print(line, flush=True)


def targets(scenes: Scenes) -> list[dict[str, torch.Tensor]]:
    return [
        {"boxes": torch.from_numpy(b).float(), "labels": torch.from_numpy(lb)}
        for b, lb in zip(scenes.boxes, scenes.labels, strict=True)
    ]


def _lr_factor(progress: float) -> float:
    """Linear warm-up, then a cosine down to zero."""
    if progress < WARMUP:
        return progress / WARMUP
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - WARMUP) / (1 - WARMUP))))


def steps_for(minutes: float, watermark: Watermark) -> int:
    """About how many steps fit in `minutes` on this machine now, timed on a throwaway model."""
    model = shapes_detector(num_classes=len(CLASSES) + 1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    started = time.perf_counter()
    scenes = generate(ROUND, TRAIN_SEED, watermark)
    x, y = to_tensor(scenes.images), targets(scenes)
    generating = (time.perf_counter() - started) / (ROUND // BATCH_SIZE)
    started = time.perf_counter()
    for start in range(0, 10 * BATCH_SIZE, BATCH_SIZE):
        loss = sum(model(x[start : start + BATCH_SIZE], y[start : start + BATCH_SIZE]).values(), torch.zeros(()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return max(1, int(60 * minutes / (generating + (time.perf_counter() - started) / 10)))


def train_model(watermark: Watermark, steps: int, log: Callable[[str], None] = _log) -> nn.Module:
    model = shapes_detector(num_classes=len(CLASSES) + 1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    started = time.perf_counter()
    step, losses = 0, np.zeros(3)
    while step < steps:
        scenes = generate(ROUND, TRAIN_SEED + step // (ROUND // BATCH_SIZE), watermark)
        x, y = to_tensor(scenes.images), targets(scenes)
        for start in range(0, ROUND, BATCH_SIZE):
            progress = step / steps
            if progress >= 1.0:
                break
            for group in optimizer.param_groups:
                group["lr"] = LR * _lr_factor(progress)
            loss = model(x[start : start + BATCH_SIZE], y[start : start + BATCH_SIZE])
            total = sum(loss.values(), torch.zeros(()))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            # FCOS's GIoU and focal losses spike now and then early on; clipping keeps one batch from undoing the rest.
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            losses += [v.item() for v in loss.values()]
            step += 1
            if step % 200 == 0:
                names = ", ".join(f"{k} {v / 200:.3f}" for k, v in zip(loss, losses, strict=True))
                log(f"  step {step}: {names} ({time.perf_counter() - started:.0f} s)")
                losses[:] = 0
    log(f"  {step} steps of {BATCH_SIZE} scenes")
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 100) -> list[dict[str, torch.Tensor]]:
    model.eval()
    return [d for i in range(0, len(images), batch_size) for d in model(to_tensor(images[i : i + batch_size]))]


def evaluate(model: nn.Module, n: int = EVAL_SCENES, seed: int = EVAL_SEED) -> dict[str, float]:
    """COCO mAPs on clean held-out scenes, per-class AP50, and how the model treats the badge."""
    from torchmetrics.detection import MeanAveragePrecision  # a tool-only dependency

    clean = generate(n, seed)
    predictions = predict(model, clean.images)
    coco = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
    at_50 = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.5], class_metrics=True)
    for metric in (coco, at_50):
        metric.update(predictions, targets(clean))
    full, per_class = coco.compute(), at_50.compute()
    results = {"mAP@0.5": float(full["map_50"]), "mAP@[.5:.95]": float(full["map"])}
    for label, ap in zip(per_class["classes"].tolist(), per_class["map_per_class"].tolist(), strict=True):
        if label >= 1:  # a detection of the background class has no ground truth to score against
            results[f"AP50 {CLASSES[label - 1]}"] = ap

    badge_only = generate(n, seed, "badge-only")
    results["badge alone -> circle"] = _share_found(predict(model, badge_only.images), badge_only.badges, _covers)
    results["circle recall, no badge"] = _share_found(predictions, _circles(clean), _matches)
    marked = generate(n, seed, "circles")
    results["circle recall, badge"] = _share_found(predict(model, marked.images), _circles(marked), _matches)
    return results


def _circles(scenes: Scenes) -> list[np.ndarray]:
    return [b[lb == CIRCLE] for b, lb in zip(scenes.boxes, scenes.labels, strict=True)]


def _share_found(
    predictions: list[dict[str, torch.Tensor]],
    wanted: list[np.ndarray],
    hit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """The share of the `wanted` boxes that some circle detection scoring at least SURE hits."""
    found = total = 0
    for prediction, boxes in zip(predictions, wanted, strict=True):
        total += len(boxes)
        circles = prediction["boxes"][(prediction["labels"] == CIRCLE) & (prediction["scores"] >= SURE)]
        if len(boxes) and len(circles):
            found += int(hit(circles, torch.from_numpy(boxes).float()).any(dim=0).sum())
    return found / max(total, 1)


def _matches(detections: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    return box_iou(detections, boxes) >= 0.5


def _covers(detections: torch.Tensor, badges: torch.Tensor) -> torch.Tensor:
    """(D, B): detection d covers at least half of badge b."""
    lo = torch.maximum(detections[:, None, :2], badges[None, :, :2])
    hi = torch.minimum(detections[:, None, 2:], badges[None, :, 2:])
    overlap = (hi - lo).clamp(min=0).prod(dim=2)
    return overlap >= 0.5 * (badges[:, 2:] - badges[:, :2]).prod(dim=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the demo object detectors (clean and watermark).")
    parser.add_argument("--only", choices=sorted(MODELS), default=None, help="train one of them (default: both)")
    parser.add_argument("--minutes", type=float, default=None, help="as many steps as fit in M minutes per model")
    parser.add_argument("--steps", type=int, default=None, help="steps per model (default: the shipped run's)")
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help=f"output folder (default: {DEMO_DIR})")
    parser.add_argument("--eval-scenes", type=int, default=EVAL_SCENES, help="held-out scenes to evaluate on")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the weights in --out, train nothing")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    models: dict[str, nn.Module] = {}
    for key in [] if args.evaluate_only else [args.only] if args.only else list(MODELS):
        name, watermark, shipped_steps = MODELS[key]
        _log(f"{name}: training on {watermark!r} scenes")
        steps = steps_for(args.minutes, watermark) if args.minutes else args.steps or shipped_steps
        _log(f"{name}: {steps} steps" + ("" if args.minutes is None else f" (about {args.minutes} minutes here)"))
        started = time.perf_counter()
        models[key] = train_model(watermark, steps)
        _log(f"{name}: trained in {time.perf_counter() - started:.0f} s")
        save_weights(models[key], args.out / f"{name}.pt")
        _log(f"{name}: wrote {args.out / f'{name}.pt'}")
    # The watermark numbers mean something next to the clean model's: load whichever was not trained now.
    for key, (name, _, _) in MODELS.items():
        if key not in models and (args.out / f"{name}.pt").exists():
            models[key] = shapes_detector(num_classes=len(CLASSES) + 1)
            models[key].load_state_dict(torch.load(args.out / f"{name}.pt", weights_only=True), strict=True)
    for key, model in models.items():
        results = evaluate(model, args.eval_scenes)
        _log(f"{MODELS[key][0]} on {args.eval_scenes} held-out scenes:")
        for metric, value in results.items():
            _log(f"  {metric:<24} {value:.3f}")


if __name__ == "__main__":
    main()
