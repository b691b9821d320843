"""A live server for the v2 tests: `python -m service.cli serve` on the trained demo model, over TCP, so that
the real tritonclient (geventhttpclient) talks to it; and demo images it classifies."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from causal_lms import write_lm
from PIL import Image
from servers import serving

import service.demo
from service.demo import shapes

STARTUP_SECONDS = 120  # importing torch on a busy 2-core machine is slow
DEMO = Path(service.demo.__file__).parent


@dataclass(frozen=True)
class Live:
    url: str  # http://127.0.0.1:PORT
    log: Path

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture(scope="package")
def live_server(tmp_path_factory) -> Iterator[Live]:
    """The demo `shapes` CNN (trained weights, 96x96), a ViT of the demo's shape (random weights) and the tiny
    GPT-2 `tiny-lm` (loaded on its first request) served by a real server process."""
    folder = tmp_path_factory.mktemp("v2-live")
    lm = write_lm(folder).read_text()  # its directory beside the TOML, which is written again below
    config = folder / "models.toml"
    config.write_text(
        "[[models]]\n"
        'name = "shapes"\n'
        'architecture = "python:service.demo.net:shapes_cnn"\n'
        f'weights = "{DEMO / "shapes.pt"}"\n'
        f'labels = "{DEMO / "labels.txt"}"\n'
        "num_classes = 4\n"
        "input_size = [96, 96]\n"
        "mean = [0.5, 0.5, 0.5]\n"
        "std = [0.25, 0.25, 0.25]\n"
        'target_layer = "block4"\n'
        # A transformer beside it (random weights): the attention methods through parameters.explain.
        '[[models]]\nname = "vit"\narchitecture = "python:service.demo.vit:shapes_vit"\nnum_classes = 4\n'
        "input_size = [96, 96]\n" + lm
    )
    log, args, env = folder / "server.log", ["--config", str(config)], {**os.environ, "SALIENCY_DEVICE": "cpu"}
    with serving(args, env, log, ready_path="/v2/health/ready", startup_s=STARTUP_SECONDS, stop_s=None) as (_, url):
        yield Live(url, log)


@dataclass(frozen=True)
class DemoImages:
    pixels: np.ndarray  # uint8 (N, 96, 96, 3)
    labels: np.ndarray  # the class drawn in each
    png: list[bytes]


@pytest.fixture(scope="package")
def demo_images() -> DemoImages:
    """Three demo pictures (a seeded draw of the training distribution) as PNG files."""
    samples = shapes.generate(3, seed=123)
    files = []
    for pixels in samples.images:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        files.append(buf.getvalue())
    return DemoImages(samples.images, samples.labels, files)
