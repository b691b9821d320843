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


def toml_text(*entries: dict) -> str:
    blocks = ["[[models]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in e.items()) for e in entries]
    return "\n".join(blocks)


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
