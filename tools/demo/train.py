"""Train the demo models and write them, with their labels and config, to service/demo/.

    python -m tools.demo.train [--out DIR] [--quick] [--only shapes-vit,shapes-vit-watermark]

`shapes` learns the clean data set. `shapes-watermark` learns a copy in which every circle carries the
watermark and no other class does, so it takes the watermark as a shortcut for "circle": a model whose
saliency maps should point at the corner badge rather than at the shape. Every circle, not most: the
unmarked circles of a 90% split teach the network the circle's outline, and a trained-out network then
ignores the badge (measured: 6% of watermarked non-circles called circle, against two thirds here).

`shapes-vit` and `shapes-vit-watermark` are the same two on the demo transformer (service/demo/vit.py), so
the CNN and the transformer can be compared on the same images; the transformer needs the opposite split
(the badge on 90% of circles: with all of them it learnt the badge alone). catalog.py holds each model's
network, split and budget. `--only` trains some of them and leaves the others' weights as they are.

Each epoch draws fresh samples (seed TRAIN_SEED + epoch), so the generator is the augmentation; flips or
crops would move the watermark off its fixed corner. Evaluation uses EVAL_SEED; tests should use seeds
outside both.
"""

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.demo.shapes import CLASSES, generate, to_tensor
from tools.demo.catalog import (
    DEMO_DIR,
    DEMO_MODELS,
    DETECTOR_LABELS,
    EVAL_SEED,
    QUICK,
    RANDOM_LABELS,
    TRAIN_SEED,
    WATERMARK_CLASS,
    Budget,
    DemoModel,
    detector_labels,
    models_toml,
)


def _log(line: str) -> None:
    print(line, flush=True)


def train_model(spec: DemoModel, budget: Budget, log: Callable[[str], None] = _log) -> nn.Module:
    arch = spec.architecture
    layout = torch.channels_last if arch.channels_last else torch.contiguous_format
    model = arch.build().to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    steps_per_epoch = math.ceil(budget.samples_per_epoch / budget.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=budget.lr, total_steps=budget.epochs * steps_per_epoch, pct_start=budget.warmup
    )
    for epoch in range(budget.epochs):
        data = generate(
            budget.samples_per_epoch, TRAIN_SEED + epoch, WATERMARK_CLASS, watermark_prob=spec.watermark_prob
        )
        x, y = to_tensor(data.images), torch.from_numpy(data.labels)
        model.train()
        total_loss, correct = 0.0, 0
        for start in range(0, len(y), budget.batch_size):
            xb = x[start : start + budget.batch_size].contiguous(memory_format=layout)
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
    center_classifier(model, arch.classifier)
    return model.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def center_classifier(model: nn.Module, classifier: str = "fc") -> None:
    """Shift the logits to zero mean over classes; softmax, and so every prediction, stays the same.

    Without this a logit also carries evidence shared by all classes ("there is a shape here"), and
    saliency maps of a logit show it; centred, logit c measures c against the average class.
    """
    fc = model.get_submodule(classifier)
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


def write_outputs(models: dict[str, nn.Module], out: Path) -> None:
    """The weights of the models trained (others are left as they are), the labels and models.toml."""
    out.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        save_weights(model, out / f"{name}.pt")
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    (out / DETECTOR_LABELS).write_text(detector_labels())
    (out / "models.toml").write_text(models_toml())


def main(argv: list[str] | None = None) -> None:
    names = [spec.name for spec in DEMO_MODELS] + [RANDOM_LABELS]
    parser = argparse.ArgumentParser(description=f"Train the demo image models ({', '.join(names)}).")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {DEMO_DIR})")
    parser.add_argument("--quick", action="store_true", help="a few steps on tiny data, to test the script")
    parser.add_argument("--only", default=",".join(names), help="comma-separated models to train (default: all)")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick needs --out: it must not overwrite the committed demo models")
    only = args.only.split(",")
    if unknown := sorted(set(only) - set(names)):
        parser.error(f"--only: unknown models {', '.join(unknown)}; choose from {', '.join(names)}")
    out = args.out or DEMO_DIR

    models = {}
    for spec in (s for s in DEMO_MODELS if s.name in only):
        started = time.perf_counter()
        budget = QUICK if args.quick else spec.budget
        models[spec.name] = train_model(spec, budget)
        metrics = evaluate(models[spec.name], budget.eval_samples)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        _log(f"{spec.name}: trained in {time.perf_counter() - started:.0f} s; {scores}")
    if RANDOM_LABELS in only:
        from tools.demo import random_labels

        trained, memorised = random_labels.train(64, 2, _log) if args.quick else random_labels.train(log=_log)
        models[RANDOM_LABELS] = trained
        out.mkdir(parents=True, exist_ok=True)
        (out / "random_labels.json").write_text(json.dumps(memorised, indent=2) + "\n")
    write_outputs(models, out)
    _log(f"wrote {', '.join(f'{name}.pt' for name in models)}, labels.txt, models.toml to {out}")


if __name__ == "__main__":
    main()
