"""A small torchvision Faster R-CNN for the detection tests: random weights (seeded), built as the service
builds torchvision detectors (no downloaded backbone, the input size as its working size), with a low score
threshold so that a random detector still reports boxes."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchvision

from service.models.detection import Detector, builder_kwargs

NAME = "fasterrcnn_mobilenet_v3_large_fpn"
SIZE = (128, 128)


def faster_rcnn(seed: int = 0) -> torchvision.models.detection.FasterRCNN:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = torchvision.models.get_model(NAME, weights=None, num_classes=5, **builder_kwargs(NAME, SIZE))
    return model.eval()


def wrapped(seed: int = 0) -> tuple[torchvision.models.detection.FasterRCNN, Detector]:
    model = faster_rcnn(seed)
    return model, Detector(model).eval()


def picture(seed: int = 0) -> torch.Tensor:
    """(1, 3, 128, 128) pixels in [0, 1]: smooth blobs, so that the random detector finds something."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, 8, 8), generator=g)
    return torch.nn.functional.interpolate(coarse, size=SIZE, mode="bilinear", align_corners=False)


LABELS = ["__background__", "circle", "square", "triangle", "star"]
ENTRY = {"name": "frcnn", "kind": "detection", "architecture": f"torchvision:{NAME}", "num_classes": 5,
         "input_size": list(SIZE), "min_score": 0.0, "max_detections": 3, "weights": "frcnn.pt",
         "labels": "labels.txt"}  # fmt: skip


def write_detector(folder: Path) -> Path:
    """faster_rcnn(seed=0)'s weights, labels and a models TOML serving it as `frcnn` (every box reported)."""
    torch.save(faster_rcnn(seed=0).state_dict(), folder / "frcnn.pt")
    (folder / "labels.txt").write_text("\n".join(LABELS))
    config = folder / "models.toml"
    config.write_text("[[models]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in ENTRY.items()))
    return config
