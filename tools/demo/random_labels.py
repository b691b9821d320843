"""`shapes-random-labels`: the demo network trained to memorise a fixed set of shapes with shuffled labels.

    python -m tools.demo.random_labels [--out DIR] [--quick]   (also part of python -m tools.demo.train)

The reference model of the data randomization test (Adebayo et al. 2018): its labels carry no information
about the image, so a saliency method whose maps still look like the trained model's maps shows the input's
structure, not what the network learnt. Unlike the other demo models it sees one fixed sample set for many
epochs (fresh samples could not be memorised); the labels are a seeded permutation of the true ones, so the
classes stay balanced. The training accuracy it reaches is written next to the weights (random_labels.json).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.demo.net import shapes_cnn
from service.demo.shapes import CLASSES, generate, to_tensor
from tools.demo.catalog import DEMO_DIR, RANDOM_LABELS
from tools.demo.train import center_classifier, predict, save_weights

NAME = RANDOM_LABELS
SEED = 70_000  # the fixed training samples (outside the other models' train and eval seeds)
SAMPLES = 1024
EPOCHS = 60
BATCH = 64
LR = 3e-3


def shuffled_labels(labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).permutation(labels)


def train(samples: int = SAMPLES, epochs: int = EPOCHS, log=print) -> tuple[nn.Module, dict[str, float]]:
    data = generate(samples, SEED)
    x, y = to_tensor(data.images), torch.from_numpy(shuffled_labels(data.labels))
    torch.manual_seed(SEED)
    model = shapes_cnn(num_classes=len(CLASSES)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * math.ceil(samples / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps)
    for epoch in range(epochs):
        order = torch.randperm(samples)
        model.train()
        correct = 0
        for start in range(0, samples, BATCH):
            idx = order[start : start + BATCH]
            logits = model(x[idx].contiguous(memory_format=torch.channels_last))
            loss = nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(1) == y[idx]).sum())
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            log(f"{NAME} epoch {epoch + 1}/{epochs}: train accuracy (shuffled labels) {correct / samples:.4f}")
    center_classifier(model)
    model = model.to(memory_format=torch.contiguous_format).eval()
    fresh = generate(2000, SEED + 1)
    scores = {
        "train_accuracy": float(np.mean(predict(model, data.images) == y.numpy())),
        "true_label_accuracy": float(np.mean(predict(model, fresh.images) == fresh.labels)),
        "samples": samples,
        "epochs": epochs,
    }
    return model, scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"Train {NAME} (the data randomization reference).")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {DEMO_DIR})")
    parser.add_argument("--quick", action="store_true", help="a few steps on tiny data, to test the script")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick needs --out: it must not overwrite the committed demo model")
    out = args.out or DEMO_DIR
    started = time.perf_counter()
    model, scores = train(64, 2) if args.quick else train()
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / f"{NAME}.pt")
    (out / "random_labels.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(f"{NAME}: trained in {time.perf_counter() - started:.0f} s; {scores}", flush=True)


if __name__ == "__main__":
    main()
