"""Fixtures shared by the explainer tests: the registry and a random-weight resnet18 (nothing downloads)."""

import pytest
import torch
import torchvision

from service.explainers import Registry, default_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


@pytest.fixture(scope="session")
def resnet18() -> torch.nn.Module:
    """torchvision resnet18, 10 classes, weights from seed 0, eval mode. Tests must not modify it."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torchvision.models.resnet18(num_classes=10).eval()
