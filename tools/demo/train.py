"""Train the demo models and write them, with their labels and config, to service/demo/.

    python -m tools.demo.train [--out DIR] [--quick]

`shapes` learns the clean data set. `shapes-watermark` learns a copy in which every circle carries the
watermark and no other class does, so it takes the watermark as a shortcut for "circle": a model whose
saliency maps should point at the corner badge rather than at the shape. Every circle, not most: the
unmarked circles of a 90% split teach the network the circle's outline, and a trained-out network then
ignores the badge (measured: 6% of watermarked non-circles called circle, against two thirds here).

Each epoch draws fresh samples (seed TRAIN_SEED + epoch), so the generator is the augmentation; flips or
crops would move the watermark off its fixed corner. Evaluation uses EVAL_SEED; tests should use seeds
outside both.
"""

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.demo.net import CAM_LAYER, shapes_cnn
from service.demo.shapes import CLASSES, IMAGE_SIZE, MEAN, STD, generate, to_tensor

DEMO_DIR = Path(__file__).resolve().parents[2] / "service" / "demo"  # what this writes ships with the package
TRAIN_SEED = 1_000
EVAL_SEED = 90_000
WATERMARK_CLASS = CLASSES.index("circle")
RANDOM_LABELS = "shapes-random-labels"  # trained by random_labels.py: the data randomization test's reference


@dataclass(frozen=True)
class Budget:
    epochs: int
    samples_per_epoch: int
    batch_size: int = 64
    eval_samples: int = 2000
    lr: float = 3e-3


@dataclass(frozen=True)
class DemoModel:
    name: str
    watermark_prob: float  # chance that a training image of WATERMARK_CLASS carries the watermark
    budget: Budget

    @property
    def weights(self) -> str:
        return f"{self.name}.pt"


DEMO_MODELS = (
    # Longer training makes the clean model robust to a badge it has never seen (96% correct on images
    # that all carry one, against 62% after 4 x 6144 samples).
    DemoModel("shapes", 0.0, Budget(epochs=5, samples_per_epoch=8192)),
    # Shorter, because the longer it trains, the more it learns the circle's outline besides the badge
    # and the weaker the shortcut (67% of watermarked non-circles called circle, 53% after 5 x 8192).
    DemoModel("shapes-watermark", 1.0, Budget(epochs=4, samples_per_epoch=6144)),
)
QUICK = Budget(epochs=1, samples_per_epoch=64, batch_size=32, eval_samples=64)


def _log(line: str) -> None:
    print(line, flush=True)


def train_model(spec: DemoModel, budget: Budget, log: Callable[[str], None] = _log) -> nn.Module:
    # channels_last makes these small convolutions about twice as fast on the CPU.
    model = shapes_cnn(num_classes=len(CLASSES)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.lr)
    steps_per_epoch = math.ceil(budget.samples_per_epoch / budget.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=budget.lr, total_steps=budget.epochs * steps_per_epoch
    )
    for epoch in range(budget.epochs):
        data = generate(
            budget.samples_per_epoch, TRAIN_SEED + epoch, WATERMARK_CLASS, watermark_prob=spec.watermark_prob
        )
        x, y = to_tensor(data.images), torch.from_numpy(data.labels)
        model.train()
        total_loss, correct = 0.0, 0
        for start in range(0, len(y), budget.batch_size):
            xb = x[start : start + budget.batch_size].contiguous(memory_format=torch.channels_last)
            yb = y[start : start + budget.batch_size]
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
        log(
            f"{spec.name} epoch {epoch + 1}/{budget.epochs}: loss {total_loss / len(y):.4f}, "
            f"train accuracy {correct / len(y):.4f}"
        )
    center_classifier(model)
    return model.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def center_classifier(model: nn.Module) -> None:
    """Shift the logits to zero mean over classes; softmax, and so every prediction, stays the same.

    Without this a logit also carries evidence shared by all classes ("there is a shape here"), and
    saliency maps of a logit show it; centred, logit c measures c against the average class.
    """
    fc = model.get_submodule("fc")
    assert isinstance(fc, nn.Linear)
    fc.weight.sub_(fc.weight.mean(dim=0, keepdim=True))
    fc.bias.sub_(fc.bias.mean())


def evaluate(model: nn.Module, n: int, seed: int = EVAL_SEED) -> dict[str, float]:
    """Accuracy on clean and on circle-watermarked samples, and how often the watermark alone wins."""
    clean = generate(n, seed)
    marked = generate(n, seed, watermark_class=WATERMARK_CLASS, watermark_prob=0.9)
    everywhere = generate(n, seed, watermark_all=True)
    others = everywhere.labels != WATERMARK_CLASS
    return {
        "clean_accuracy": float(np.mean(predict(model, clean.images) == clean.labels)),
        "watermarked_accuracy": float(np.mean(predict(model, marked.images) == marked.labels)),
        "shortcut_rate": float(np.mean(predict(model, everywhere.images[others]) == WATERMARK_CLASS)),
    }


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model.eval()
    batches = [model(to_tensor(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return torch.cat(batches).argmax(1).numpy()


def save_weights(model: nn.Module, path: Path) -> None:
    # Plain contiguous float32 tensors: small, and loadable with torch.load(weights_only=True).
    state = {
        k: (v.float() if v.is_floating_point() else v).detach().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    torch.save(state, path)


def models_toml(models: tuple[DemoModel, ...] = DEMO_MODELS) -> str:
    blocks: list[dict] = []
    for spec in models:
        fields = {
            "name": spec.name,
            "architecture": "python:service.demo.net:shapes_cnn",
            "weights": spec.weights,
            "num_classes": len(CLASSES),
            "labels": "labels.txt",
            "input_size": [IMAGE_SIZE, IMAGE_SIZE],
            "resize": "exact",
            "mean": list(MEAN),
            "std": list(STD),
            "target_layer": CAM_LAYER,
            "preload": True,
        }
        blocks.append(fields)
    # The data randomization test's reference (python -m tools.demo.random_labels writes its weights).
    blocks.append({**blocks[0], "name": RANDOM_LABELS, "weights": f"{RANDOM_LABELS}.pt"})
    # The text demo models (python -m tools.demo.text.train writes their directories).
    for name in ("reviews", "reviews-shortcut"):
        blocks.append(
            {
                "name": name,
                "kind": "text",
                "architecture": f"transformers:text/{name}",  # its config.json gives the classes and labels
                "max_length": 64,
                "preload": True,
            }
        )
    # JSON spells these strings, numbers, arrays and booleans the way TOML does.
    text = ["[[models]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in b.items()) for b in blocks]
    return "# Written by `python -m tools.demo.train`.\n\n" + "\n".join(text)


def write_outputs(models: dict[str, nn.Module], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for spec in DEMO_MODELS:
        save_weights(models[spec.name], out / spec.weights)
    save_weights(models[RANDOM_LABELS], out / f"{RANDOM_LABELS}.pt")
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    (out / "models.toml").write_text(models_toml())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the demo models (shapes, shapes-watermark).")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {DEMO_DIR})")
    parser.add_argument("--quick", action="store_true", help="a few steps on tiny data, to test the script")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick needs --out: it must not overwrite the committed demo models")
    out = args.out or DEMO_DIR

    models = {}
    for spec in DEMO_MODELS:
        started = time.perf_counter()
        budget = QUICK if args.quick else spec.budget
        models[spec.name] = train_model(spec, budget)
        metrics = evaluate(models[spec.name], budget.eval_samples)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        _log(f"{spec.name}: trained in {time.perf_counter() - started:.0f} s; {scores}")
    from tools.demo import random_labels

    models[RANDOM_LABELS], memorised = random_labels.train(64, 2, _log) if args.quick else random_labels.train(log=_log)
    out.mkdir(parents=True, exist_ok=True)
    (out / "random_labels.json").write_text(json.dumps(memorised, indent=2) + "\n")
    write_outputs(models, out)
    _log(f"wrote {', '.join(s.weights for s in DEMO_MODELS)}, {RANDOM_LABELS}.pt, labels.txt, models.toml to {out}")


if __name__ == "__main__":
    main()
