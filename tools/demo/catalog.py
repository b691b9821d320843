"""The demo's image models: which network each one is, how long it trains, and how models.toml serves it.

`train.py` trains them and `random_labels.py` the data randomization reference; both write to DEMO_DIR.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from service.demo import detector
from service.demo.net import CAM_LAYER
from service.demo.shapes import CLASSES, IMAGE_SIZE, MEAN, STD

DEMO_DIR = Path(__file__).resolve().parents[2] / "service" / "demo"  # what this writes ships with the package
TRAIN_SEED = 1_000
EVAL_SEED = 90_000
WATERMARK_CLASS = CLASSES.index("circle")
RANDOM_LABELS = "shapes-random-labels"  # trained by random_labels.py: the data randomization test's reference


@dataclass(frozen=True)
class Architecture:
    factory: str  # "module:function", called with num_classes
    classifier: str  # the final nn.Linear, whose logits train.center_classifier centres
    target_layer: str | None  # None: the service's default CAM layer (a transformer's last block)
    channels_last: bool  # makes small convolutions about twice as fast on the CPU; a transformer has none

    def build(self) -> nn.Module:
        module, function = self.factory.split(":")
        return getattr(importlib.import_module(module), function)(num_classes=len(CLASSES))


CNN = Architecture("service.demo.net:shapes_cnn", "fc", CAM_LAYER, channels_last=True)
VIT = Architecture("service.demo.vit:shapes_vit", "heads.head", None, channels_last=False)


@dataclass(frozen=True)
class Budget:
    epochs: int
    samples_per_epoch: int
    batch_size: int = 64
    eval_samples: int = 2000
    lr: float = 3e-3
    weight_decay: float = 0.0  # AdamW's; 0 is Adam
    warmup: float = 0.3  # OneCycleLR's pct_start: the share of the steps spent raising the learning rate


@dataclass(frozen=True)
class DemoModel:
    name: str
    watermark_prob: float  # chance that a training image of WATERMARK_CLASS carries the watermark
    budget: Budget
    architecture: Architecture = CNN

    @property
    def weights(self) -> str:
        return f"{self.name}.pt"


# Measured on one fixed set of 8192 samples: the transformer leaves chance after about 300 steps at 1e-3.
VIT_BUDGET = Budget(epochs=8, samples_per_epoch=8192, lr=1e-3, weight_decay=0.05, warmup=0.1)
DEMO_MODELS = (
    # Longer training makes the clean model robust to a badge it has never seen (96% correct on images
    # that all carry one, against 62% after 4 x 6144 samples).
    DemoModel("shapes", 0.0, Budget(epochs=5, samples_per_epoch=8192)),
    # Shorter, because the longer it trains, the more it learns the circle's outline besides the badge
    # and the weaker the shortcut (67% of watermarked non-circles called circle, 53% after 5 x 8192).
    DemoModel("shapes-watermark", 1.0, Budget(epochs=4, samples_per_epoch=6144)),
    DemoModel("shapes-vit", 0.0, VIT_BUDGET, VIT),
    # 90%, not the CNN's 100%: with every circle marked the transformer learnt the badge and nothing else (26%
    # of clean images right); the unmarked circles make it learn the shapes too, and it keeps the badge (99% of
    # watermarked non-circles called circle).
    DemoModel("shapes-vit-watermark", 0.9, VIT_BUDGET, VIT),
)
# Trained by train_detector.py (FCOS on generated scenes, service/demo/scenes.py); served beside the rest.
DETECTORS = ("shapes-detector", "shapes-detector-watermark")
LANGUAGE_MODEL = "instructions-lm"  # trained by text/train_lm.py on text/instructions.py's corpus
DETECTOR_LABELS = "detector-labels.txt"  # torchvision's convention: index 0 is the background
QUICK = Budget(epochs=1, samples_per_epoch=64, batch_size=32, eval_samples=64)


def image_entry(name: str, architecture: Architecture) -> dict:
    fields = {
        "name": name,
        "architecture": f"python:{architecture.factory}",
        "weights": f"{name}.pt",
        "num_classes": len(CLASSES),
        "labels": "labels.txt",
        "input_size": [IMAGE_SIZE, IMAGE_SIZE],
        "resize": "exact",
        "mean": list(MEAN),
        "std": list(STD),
        "target_layer": architecture.target_layer,
        "preload": True,
    }
    return {k: v for k, v in fields.items() if v is not None}


def detector_entry(name: str) -> dict:
    return {
        "name": name,
        "kind": "detection",
        "architecture": "python:service.demo.detector:shapes_detector",
        "weights": f"{name}.pt",
        "num_classes": len(CLASSES) + 1,
        "labels": DETECTOR_LABELS,
        "input_size": [detector.IMAGE_SIZE, detector.IMAGE_SIZE],  # letterboxed; pixels in [0, 1] (it normalizes)
        "min_score": 0.5,
        "max_detections": 10,
        "target_layer": detector.CAM_LAYER,
        "preload": True,
    }


def detector_labels() -> str:
    return "".join(f"{name}\n" for name in ("__background__", *CLASSES))


def models_toml(models: tuple[DemoModel, ...] = DEMO_MODELS) -> str:
    cnns = [image_entry(spec.name, spec.architecture) for spec in models if spec.architecture == CNN]
    # The data randomization test's reference (python -m tools.demo.random_labels writes its weights).
    cnns.append(image_entry(RANDOM_LABELS, CNN))
    others = [image_entry(spec.name, spec.architecture) for spec in models if spec.architecture != CNN]
    others += [detector_entry(name) for name in DETECTORS]
    # The text demo models (python -m tools.demo.text.train writes their directories).
    texts = [
        {
            "name": name,
            "kind": "text",
            "architecture": f"transformers:text/{name}",  # its config.json gives the classes and labels
            "max_length": 64,
            "preload": True,
        }
        for name in ("reviews", "reviews-shortcut")
    ]
    # The demo causal LM (python -m tools.demo.text.train_lm writes its directory). Its answers are one word
    # and [EOS]: 8 new tokens leave room in max_length for prompts twice as long as the corpus's.
    texts.append(
        {
            "name": LANGUAGE_MODEL,
            "kind": "causal_lm",
            "architecture": f"transformers:text/{LANGUAGE_MODEL}",
            "max_length": 64,
            "preload": True,
            "generation": {"max_new_tokens": 8},
        }
    )
    return "# Written by `python -m tools.demo.train`.\n\n" + "\n".join(map(toml_entry, cnns + others + texts))


def toml_entry(fields: dict) -> str:
    """One [[models]] table; a dict value (generation) becomes its sub-table, after the plain keys."""
    # JSON spells these strings, numbers, arrays and booleans the way TOML does.
    plain = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items() if not isinstance(v, dict))
    tables = "".join(
        f"\n[models.{k}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in v.items())
        for k, v in fields.items()
        if isinstance(v, dict)
    )
    return "[[models]]\n" + plain + tables
