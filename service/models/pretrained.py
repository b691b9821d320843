"""torchvision's pretrained weights by name: `weights = "torchvision:DEFAULT"` or an enum member's name.

The enum gives the labels and preprocessing (no download needed for those); the state_dict comes from the
torch cache ($TORCH_HOME/hub/checkpoints, under the file name of the weights' URL), downloaded there on first
use. The download is ours, not torch.hub's: urllib there has no timeout, so a network that drops packets
would hang a load forever, and torch.hub would unpickle the file with weights_only=False.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import torch.hub
import torchvision
from torchvision.models import WeightsEnum
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

log = logging.getLogger(__name__)

# A stalled download (no byte for `read` seconds) fails; a slow one that keeps moving goes on.
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
GEOMETRY = ("input_size", "resize", "resize_size")  # taken from the weights together, or not at all
INTERPOLATIONS = {InterpolationMode.BILINEAR: "bilinear", InterpolationMode.BICUBIC: "bicubic"}


class DownloadFailed(Exception):
    """The weights are neither in the cache nor downloadable; str() is the short reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.detail = detail


def resolve(architecture: str, name: str) -> WeightsEnum:
    """The weights enum member for a torchvision architecture: "DEFAULT", a member such as "IMAGENET1K_V2",
    or a full name such as "ResNet50_Weights.IMAGENET1K_V2" (which must belong to the architecture)."""
    try:
        enum = torchvision.models.get_model_weights(architecture)
    except (ValueError, KeyError):
        raise ValueError(f"torchvision has no model {architecture!r} with pretrained weights") from None
    member = name.removeprefix(f"{enum.__name__}.")
    if member not in enum.__members__:
        choices = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise ValueError(f"{architecture} has no weights {name!r}; torchvision has: {choices}")
    weights = enum[member]
    if not isinstance(weights.transforms(), ImageClassification) or "categories" not in weights.meta:
        raise ValueError(f"{enum.__name__}.{weights.name} are not image-classification weights")
    return weights


def spec_defaults(weights: WeightsEnum, given: dict[str, Any]) -> dict[str, Any]:
    """The spec fields the weights' metadata supplies, for the fields the TOML does not give itself."""
    preset = weights.transforms()
    categories = len(weights.meta["categories"])
    if given.get("num_classes", categories) != categories:
        raise ValueError(f"num_classes is {given['num_classes']}, but {weights} have {categories} classes")
    out: dict[str, Any] = {
        "num_classes": categories,
        "mean": tuple(preset.mean),
        "std": tuple(preset.std),
        "interpolation": INTERPOLATIONS[preset.interpolation],
    }
    # The crop only makes sense with its own resize: a TOML that sets any of the geometry sets all of it.
    if not any(key in given for key in GEOMETRY):
        crop = preset.crop_size[0]
        out.update(input_size=(crop, crop), resize="shorter_side", resize_size=preset.resize_size[0])
    return {key: value for key, value in out.items() if key not in given}


def builder_kwargs(architecture: str, weights: WeightsEnum) -> dict[str, Any]:
    """What torchvision's builder changes in the architecture when it is given these weights."""
    if architecture in ("googlenet", "inception_v3"):
        # The weights expect inputs renormalized inside the model; their values replace any initialization.
        return {"transform_input": True, "init_weights": False}
    if architecture.startswith("vit_"):
        return {"image_size": weights.meta["min_size"][0]}
    if architecture == "maxvit_t":
        return {"input_size": weights.meta["min_size"]}
    return {}


def checkpoint(weights: WeightsEnum) -> Path:
    """The cached file of the weights, downloaded first if it is not there."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if not path.is_file():
        download(weights.url, path)
    return path


def download(url: str, path: Path, timeout: httpx.Timeout = DOWNLOAD_TIMEOUT) -> None:
    """url -> path through a temporary file (so a broken download never looks cached), checking the SHA-256
    prefix in the file name as torch.hub does."""
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    started = time.perf_counter()
    log.info("downloading %s to %s", url, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
        expected = torch.hub.HASH_REGEX.search(path.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise DownloadFailed("downloaded weights do not match their hash", f"{url}: sha256 {digest.hexdigest()}")
        os.replace(partial, path)
    except (httpx.HTTPError, OSError) as exc:
        raise DownloadFailed(
            f"weights not in the torch cache ($TORCH_HOME) and the download failed: {type(exc).__name__}",
            f"{path} is missing and downloading {url} failed: {exc}",
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    log.info("downloaded %s (%d bytes) in %.1f s", path.name, path.stat().st_size, time.perf_counter() - started)
