"""Fixtures of the API tests: a folder of small models, apps built on it, and real photographs.

Models: `shapes18` (torchvision resnet18, 4 classes at 64x64, saved weights and labels), `broken` (its
weights file is not a state_dict; preloaded, so the main app is never ready) and `crop18` (random weights,
no labels, shorter_side center crop, loaded on first use).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from fastapi.testclient import TestClient
from PIL import Image
from sklearn.datasets import load_sample_images

from service import logs
from service.main import create_app
from service.settings import Settings

LABELS = ("circle", "square", "triangle", "star")

SHAPES18 = {
    "name": "shapes18",
    "architecture": "torchvision:resnet18",
    "weights": "resnet18.pt",
    "labels": "labels.txt",
    "num_classes": 4,
    "input_size": [64, 64],
}
BROKEN = {
    "name": "broken",
    "architecture": "torchvision:resnet18",
    "weights": "broken.pt",
    "num_classes": 4,
    "input_size": [64, 64],
}
CROP18 = {
    "name": "crop18",
    "architecture": "torchvision:resnet18",
    "num_classes": 4,
    "input_size": [64, 64],
    "resize": "shorter_side",
    "preload": False,
}

# Small limits, so that every limit can be crossed cheaply.
LIMITS = {
    "device": "cpu",
    "max_images": 4,
    "max_body_bytes": 4 * 2**20,
    "max_image_bytes": 2 * 2**20,
    "max_image_pixels": 2_000_000,
    "max_passes_per_image": 200,
    "max_top_k": 10,
}


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    height: int
    width: int

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        kind = {"jpg": "jpeg"}.get(self.name.rsplit(".", 1)[1], self.name.rsplit(".", 1)[1])
        return f"data:image/{kind};base64,{self.b64}"


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **options)
    return buf.getvalue()


def write_config(folder: Path, filename: str, *entries: dict) -> Path:
    """A models TOML next to the weights, so its relative paths resolve to them."""
    blocks = ["[[models]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in e.items()) for e in entries]
    path = folder / filename
    path.write_text("\n".join(blocks))
    return path


def saliency_array(saliency: dict) -> np.ndarray:
    """The `saliency` object of a response as a numpy array (C-order little-endian bytes)."""
    dtype = {"float32": "<f4", "float16": "<f2", "uint8": "u1"}[saliency["dtype"]]
    return np.frombuffer(base64.b64decode(saliency["data"]), dtype=dtype).reshape(saliency["shape"])


def png_image(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    return image


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.resnet18(num_classes=len(LABELS))
    torch.save(net.state_dict(), root / "resnet18.pt")
    (root / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))
    (root / "broken.pt").write_bytes(b"this is not a state_dict\n" * 8)
    return root


@pytest.fixture(scope="session")
def main_config(model_dir) -> Path:
    return write_config(model_dir, "models.toml", SHAPES18, {**BROKEN, "preload": True}, CROP18)


@pytest.fixture(scope="session")
def ready_config(model_dir) -> Path:
    """Only models that load: an app on it becomes ready."""
    return write_config(model_dir, "ready.toml", SHAPES18, CROP18)


@pytest.fixture(scope="session")
def settings(main_config) -> Settings:
    return Settings(config=main_config, **LIMITS)


@pytest.fixture(scope="session")
def client(settings) -> Iterator[TestClient]:
    """One app for the whole session (its lifespan runs); tests that need a fresh one use make_client."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def make_client(ready_config) -> Callable:
    """A context manager that runs a fresh app on `ready_config` with the given settings overrides."""

    @contextmanager
    def make(**overrides) -> Iterator[TestClient]:
        settings = Settings(**{"config": ready_config, **LIMITS, **overrides})
        with TestClient(create_app(settings)) as test_client:
            yield test_client

    return make


@pytest.fixture(scope="session")
def photos() -> dict[str, Photo]:
    """Real photographs in each accepted format: china.jpg, flower.png, chelsea.webp (and chelsea.jpg)."""
    china, flower = load_sample_images().images
    chelsea = skimage.data.chelsea()
    uploads = {
        "china.jpg": (china, "JPEG", {"quality": 90}),
        "flower.png": (flower, "PNG", {}),
        "chelsea.webp": (chelsea, "WEBP", {"quality": 80}),
        "chelsea.jpg": (chelsea, "JPEG", {"quality": 85}),
    }
    return {
        name: Photo(name, encode(pixels, fmt, **options), pixels.shape[0], pixels.shape[1])
        for name, (pixels, fmt, options) in uploads.items()
    }


@pytest.fixture(scope="session")
def explain_json(client) -> Callable[..., dict]:
    """POST a JSON explain request to the session app; asserts 200 and returns the body."""

    def call(*images: str, model: str = "shapes18", **spec) -> dict:
        response = client.post(f"/v1/models/{model}/explain", json={"images": list(images), **spec})
        assert response.status_code == 200, response.text
        return response.json()

    return call


# Helpers as fixtures: test modules cannot import a conftest by name (there are several).
@pytest.fixture(scope="session")
def labels() -> tuple[str, ...]:
    return LABELS


@pytest.fixture(scope="session")
def as_array() -> Callable[[dict], np.ndarray]:
    return saliency_array


@pytest.fixture(scope="session")
def open_png() -> Callable[[str], Image.Image]:
    return png_image


@pytest.fixture(scope="session")
def image_bytes() -> Callable[..., bytes]:
    """encode(pixels, fmt, **options): numpy pixels -> image file bytes."""
    return encode


@pytest.fixture(scope="session")
def write_config_file() -> Callable[..., Path]:
    """write_config(folder, filename, *entries): a models TOML whose relative paths resolve in `folder`."""
    return write_config


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict]]]:
    """The JSON log lines (service.logs) written while the test runs, as dicts; the root logger at INFO."""
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
