"""Image models from the zoos people deploy: timm (`timm:NAME`) and Hugging Face (`transformers:DIR`, kind image).

Each zoo says how its models want their inputs: timm in the model's `pretrained_cfg` (input size, crop_pct,
interpolation, mean, std), a Hugging Face directory in its `preprocessor_config.json`. `spec_defaults`
turns that into the spec's fields where the TOML leaves them out, as for torchvision's weights; the TOML may
override them, and the geometry (input size, resize) is taken together or not at all. The configs are read
when the TOML is, without importing transformers (timm's table needs timm, a second's import).

Hugging Face models are loaded with `attn_implementation="sdpa"`: then their attention goes through the
function the attention methods capture (models/attention.py); the outputs are the eager ones to 1e-6.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn

GEOMETRY = ("input_size", "resize", "resize_size")
RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL's codes, as Hugging Face processors store them


class HubClassifier(nn.Module):
    """A Hugging Face image classifier as a module of pixel values -> logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(pixel_values=x).logits


def build_transformers(directory: str) -> nn.Module:
    from transformers import AutoModelForImageClassification  # seconds to import: only when one is served

    model = AutoModelForImageClassification.from_pretrained(directory, attn_implementation="sdpa")
    return HubClassifier(model)


def build_timm(name: str, num_classes: int) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def transformers_labels(directory: Path) -> list[str] | None:
    """The labels of a Hugging Face config's id2label, in index order; None where it has none of its own."""
    config = read_json(directory / "config.json")
    id2label = config.get("id2label") if config else None
    if not isinstance(id2label, dict) or not id2label:
        return None
    labels = [str(id2label.get(str(i), id2label.get(i, ""))) for i in range(len(id2label))]
    generic = all(label == f"LABEL_{i}" for i, label in enumerate(labels))
    return None if generic or not all(labels) else labels


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def transformers_defaults(directory: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The spec fields a Hugging Face directory's preprocessor_config.json supplies; ValueError where it
    asks for preprocessing the service does not do (the TOML may then set the geometry itself)."""
    config = read_json(directory / "preprocessor_config.json")
    if config is None:
        return {}
    out: dict[str, Any] = {}
    if config.get("do_rescale", True) and not math.isclose(config.get("rescale_factor", 1 / 255), 1 / 255):
        raise ValueError(f"{directory.name}: preprocessor rescale_factor {config['rescale_factor']} is not 1/255")
    if config.get("do_normalize", True):
        out.update(mean=tuple(config.get("image_mean", (0.5,) * 3)), std=tuple(config.get("image_std", (0.5,) * 3)))
    else:
        out.update(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    if "resample" in config:
        if config["resample"] not in RESAMPLE:
            raise ValueError(f"{directory.name}: preprocessor resample {config['resample']} is not bilinear or bicubic")
        out["interpolation"] = RESAMPLE[config["resample"]]
    if not any(key in given for key in GEOMETRY):
        out.update(hub_geometry(directory.name, config))
    return {key: value for key, value in out.items() if key not in given}


def hub_geometry(name: str, config: dict[str, Any]) -> dict[str, Any]:
    size, crop = config.get("size") or {}, config.get("crop_size") if config.get("do_center_crop") else None
    if "height" in size and "width" in size and crop is None:
        return {"input_size": (int(size["height"]), int(size["width"])), "resize": "exact"}
    if "shortest_edge" in size:
        edge = int(size["shortest_edge"])
        if crop is None and "crop_pct" in config and edge < 384:  # ConvNeXt's processor
            return {"input_size": (edge, edge), "resize": "shorter_side", "resize_size": int(edge / config["crop_pct"])}
        side = (int(crop["height"]), int(crop["width"])) if crop else (edge, edge)
        return {"input_size": side, "resize": "shorter_side", "resize_size": edge}
    raise ValueError(
        f"{name}: the preprocessor's size {size} and crop {crop} are not a resize the service does; "
        "set input_size and resize in the TOML"
    )


def timm_defaults(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The spec fields timm's pretrained_cfg of model `name` supplies (timm's eval transform: the shorter
    side to floor(size / crop_pct), then the centre crop)."""
    import timm

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return {}
    height, width = cfg.input_size[-2:]
    out: dict[str, Any] = {"mean": tuple(cfg.mean), "std": tuple(cfg.std)}
    if cfg.interpolation in ("bilinear", "bicubic"):
        out["interpolation"] = cfg.interpolation
    if not any(key in given for key in GEOMETRY):
        scale = math.floor(min(height, width) / (cfg.crop_pct or 1.0))
        out.update(input_size=(height, width), resize="shorter_side", resize_size=max(scale, height, width))
    return {key: value for key, value in out.items() if key not in given}
