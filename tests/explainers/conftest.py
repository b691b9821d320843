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


class PassLog(torch.nn.Module):
    """A small random CNN (its last ReLU, `model.3`: 16 channels of 8x8 at 16x16 input) logging each pass's rows
    and whether the pass ran under inference mode, i.e. without autograd."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(1)
            self.model = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(16, 5),
            )
        self.passes: list[tuple[int, bool]] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.passes.append((len(x), torch.is_inference_mode_enabled()))
        return self.model(x)


@pytest.fixture
def pass_log() -> PassLog:
    return PassLog()
