"""Model specs: architecture, weights, preprocessing and labels travel together, from a TOML file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class GenerationDefaults(BaseModel):
    """A causal LM's generation when a request does not say (the request's `generate` overrides each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(32, ge=1, le=4096)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0.0, le=100.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    # Not a request's choice: how the service generates (models/kv_cache.py); false recomputes every step.
    kv_cache: bool = True


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9._-]+$", max_length=100)
    kind: Literal["image", "text", "detection", "causal_lm"] = "image"
    architecture: str = Field(
        description='"torchvision:NAME", "timm:NAME", "transformers:DIR" (an image classifier saved with '
        'save_pretrained), "torchscript:PATH" or "python:pkg.mod:factory"; for text models "transformers:DIR" '
        'or "python:pkg.mod:factory" returning (model, tokenizer)'
    )
    # A state_dict (.pt) or safetensors file; None = random weights (benchmarks only), unless `pretrained`
    # (a transformers directory holds its own weights).
    weights: Path | None = None
    pretrained: str | None = Field(
        None, description='torchvision\'s weights enum member, from weights = "torchvision:DEFAULT" or "...:NAME"'
    )
    num_classes: int = Field(gt=0, description="Classes of a classifier or detector; not read for a causal LM.")
    labels: Path | None = None
    input_size: tuple[int, int] = (224, 224)
    resize: Literal["exact", "shorter_side", "letterbox"] = "exact"
    resize_size: int | None = Field(
        None, gt=0, description="shorter_side: the shorter side is scaled to this before the centre crop"
    )
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    target_layer: str | None = None
    preload: bool = True
    # Detection models only.
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Detections under this score are not reported.")
    max_detections: int = Field(20, ge=1, le=100, description="Detections reported (and explained) per image.")
    # Text models only.
    max_length: int = Field(128, ge=2, le=4096, description="Tokens per text, special tokens included.")
    embedding_layer: str | None = Field(
        None, description="Module whose output is attributed; default: the model's input embeddings."
    )
    # Causal language models only (max_length counts prompt and answer tokens).
    generation: GenerationDefaults = Field(default_factory=GenerationDefaults)

    @model_validator(mode="before")
    @classmethod
    def _causal_defaults(cls, data: Any) -> Any:
        """A causal LM has no classes: num_classes is not read (1 where the TOML leaves it out), and its
        config.json's num_labels (transformers writes 2 by default) says nothing about it."""
        if not isinstance(data, dict) or data.get("kind") != "causal_lm":
            return data
        return {"num_classes": 1, **data}

    @model_validator(mode="before")
    @classmethod
    def _torchvision_weights(cls, data: Any) -> Any:
        """weights = "torchvision:NAME": the weights' metadata fills the fields the TOML leaves out."""
        if not isinstance(data, dict):
            return data
        weights = data.get("weights")
        if isinstance(weights, str) and weights.startswith("torchvision:"):
            data = {**data, "weights": None, "pretrained": weights.removeprefix("torchvision:")}
        if data.get("pretrained") is None:
            return data
        scheme, _, name = str(data.get("architecture", "")).partition(":")
        if scheme != "torchvision":
            raise ValueError('weights = "torchvision:..." needs architecture = "torchvision:NAME"')
        if data.get("weights") is not None:
            raise ValueError("give a weights file or torchvision's weights, not both")
        from . import pretrained

        member = pretrained.resolve(name, str(data["pretrained"]))
        return {**data, **pretrained.spec_defaults(member, data), "pretrained": member.name}

    @model_validator(mode="before")
    @classmethod
    def _detection_defaults(cls, data: Any) -> Any:
        """A detector sees the whole picture, letterboxed (scaled to fit, padded with black) so its boxes map
        back to the image; torchvision's detectors normalize inside, so their input is pixels in [0, 1]."""
        if not isinstance(data, dict) or data.get("kind") != "detection":
            return data
        return {"resize": "letterbox", "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), **data}

    @model_validator(mode="before")
    @classmethod
    def _zoo_preprocessing(cls, data: Any) -> Any:
        """timm's pretrained_cfg and a Hugging Face image directory's preprocessor_config.json fill the
        preprocessing fields the TOML leaves out (models/zoo.py)."""
        if not isinstance(data, dict) or data.get("kind", "image") != "image":
            return data
        from . import zoo

        scheme, _, ref = str(data.get("architecture", "")).partition(":")
        if scheme == "timm" and ref:
            return {**data, **zoo.timm_defaults(ref, data)}
        if scheme == "transformers" and ref:
            return {**data, **zoo.transformers_defaults(Path(ref), data)}
        return data

    @model_validator(mode="before")
    @classmethod
    def _transformers_config(cls, data: Any) -> Any:
        """A transformers directory's config.json says how many classes it has (num_labels, or its id2label):
        the TOML may leave num_classes out, and where it gives it, the two must agree. Read as JSON, without
        importing transformers; a directory without a readable config fails later, at load, saying why."""
        if not isinstance(data, dict):
            return data
        scheme, _, ref = str(data.get("architecture", "")).partition(":")
        if scheme != "transformers" or data.get("kind") == "causal_lm":
            return data
        found = config_classes(Path(ref) / "config.json")
        given = data.get("num_classes")
        if found is not None and given is not None and given != found:
            raise ValueError(f"num_classes = {given} but the model's config.json has {found} labels")
        return data if found is None or given is not None else {**data, "num_classes": found}

    @field_validator("architecture")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme, _, rest = value.partition(":")
        if scheme not in ("torchvision", "timm", "torchscript", "python", "transformers") or not rest:
            raise ValueError(
                'must be "torchvision:NAME", "timm:NAME", "torchscript:PATH", "python:pkg.mod:factory" or '
                '"transformers:DIR"'
            )
        return value

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("input_size must be positive")
        return value

    @model_validator(mode="after")
    def _kind_agrees(self) -> ModelSpec:
        scheme = self.architecture.partition(":")[0]
        if self.kind in ("text", "causal_lm") and scheme not in ("transformers", "python"):
            raise ValueError(f'a {self.kind} model\'s architecture is "transformers:DIR" or "python:pkg.mod:factory"')
        if self.kind == "detection" and scheme not in ("torchvision", "python"):
            raise ValueError('a detection model\'s architecture is "torchvision:NAME" or "python:pkg.mod:factory"')
        if self.kind == "detection" and self.resize == "shorter_side":
            raise ValueError('a detector sees the whole image: resize is "letterbox" (the default) or "exact"')
        if self.kind == "causal_lm" and self.generation.max_new_tokens >= self.max_length:
            raise ValueError("generation.max_new_tokens must leave room for a prompt within max_length")
        if self.kind == "image" and scheme == "transformers" and self.weights is not None:
            raise ValueError("a transformers directory holds its own weights: leave weights out")
        return self

    @model_validator(mode="after")
    def _channels_agree(self) -> ModelSpec:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError("mean and std need one value per channel")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self

    @model_validator(mode="after")
    def _crop_fits(self) -> ModelSpec:
        if self.resize_size is not None and (self.resize != "shorter_side" or self.resize_size < max(self.input_size)):
            raise ValueError('resize_size needs resize = "shorter_side" and must be at least input_size')
        return self

    @property
    def channels(self) -> int:
        return len(self.mean)


def config_classes(path: Path) -> int | None:
    """The class count of a transformers config.json: num_labels, else the size of id2label; None when the
    file is missing, unreadable or says neither."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    count = config.get("num_labels")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return count
    id2label = config.get("id2label")
    return len(id2label) if isinstance(id2label, dict) and id2label else None


def load_config(path: str | Path) -> list[ModelSpec]:
    """Parses a models TOML; relative paths resolve against the file's folder."""
    path = Path(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    specs = []
    for entry in data.get("models", []):
        for key in ("weights", "labels"):
            value = entry.get(key)
            if value is not None and not (key == "weights" and str(value).startswith("torchvision:")):
                entry[key] = str((path.parent / entry[key]).resolve())
        scheme, _, rest = str(entry.get("architecture", "")).partition(":")
        if scheme in ("torchscript", "transformers") and rest:
            entry["architecture"] = f"{scheme}:{(path.parent / rest).resolve()}"
        specs.append(ModelSpec.model_validate(entry))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: model names must be unique, got {names}")
    if not specs:
        raise ValueError(f"{path}: no [[models]] entries")
    return specs
