"""Fixtures of the model tests: small specs, TOML files, saved weights, and a load counter."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

from service.models import ModelSpec, loader

DEMO = "python:service.demo.net:shapes_cnn"  # the demo CNN: small, and the same initial weights every time


def entry(name: str = "demo", **fields) -> dict:
    return {"name": name, "architecture": DEMO, "num_classes": 4, "input_size": [32, 32], **fields}


def toml_text(*entries: dict) -> str:
    blocks = ["[[models]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in e.items()) for e in entries]
    return "\n".join(blocks)


@pytest.fixture
def make_spec() -> Callable[..., ModelSpec]:
    """make_spec(name="demo", **fields): a ModelSpec of the demo CNN at 32x32 unless fields say otherwise."""
    return lambda name="demo", **fields: ModelSpec(**entry(name, **fields))


@pytest.fixture
def make_entry() -> Callable[..., dict]:
    """make_entry(name="demo", **fields): one [[models]] entry as a dict."""
    return entry


@pytest.fixture
def write_toml(tmp_path) -> Callable[..., Path]:
    """write_toml(relative_path, *entries): a models TOML under tmp_path."""

    def write(relative: str, *entries: dict) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(toml_text(*entries))
        return path

    return write


@pytest.fixture(scope="session")
def resnet18_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision resnet18 (4 classes) state_dict saved to a file, and the state_dict itself."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        state = torchvision.models.resnet18(num_classes=4).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(state, path)
    return path, state


@pytest.fixture
def load_counts(monkeypatch) -> Counter:
    """Counts loader.load calls per model name (slowed a little, so concurrent callers overlap)."""
    counts: Counter = Counter()
    lock = threading.Lock()
    real_load = loader.load

    def counting_load(spec: ModelSpec):
        with lock:
            counts[spec.name] += 1
        time.sleep(0.05)
        return real_load(spec)

    monkeypatch.setattr(loader, "load", counting_load)
    return counts
