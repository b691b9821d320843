"""Guided Backprop and Guided Grad-CAM: equal to Captum's, on inplace and reused ReLUs too, the served model's
ReLUs untouched afterwards, and a clear refusal for models whose ReLUs are functions."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, GuidedGradCam
from torch import nn

from service.core import check_method
from service.core.plans import explain_here
from service.errors import InvalidParameter
from service.explainers import default_registry
from service.models import ModelPool, ModelSpec
from service.models.layers import relu_modules_only
from service.settings import Settings

REGISTRY = default_registry()


def pool_model(architecture: str, num_classes: int = 4):
    spec = ModelSpec(name="m", architecture=architecture, num_classes=num_classes, input_size=(32, 32))
    return ModelPool([spec], device="cpu").get("m")


@pytest.fixture(scope="module")
def cnn():
    return pool_model("python:service.demo.net:shapes_cnn")


@pytest.fixture(scope="module")
def resnet():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return pool_model("torchvision:resnet18", num_classes=5)


def inputs(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def relu_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules() if isinstance(m, nn.ReLU))


def test_guided_backprop_equals_captums(cnn):
    x, targets = inputs(), torch.tensor([1, 3])
    explainer, params = REGISTRY.parse("guided_backprop")
    ours = explain_here(cnn, explainer, params, x, targets, "logit", Settings())
    theirs = GuidedBackprop(cnn.prepared.original).attribute(x, target=targets)
    torch.testing.assert_close(ours.attributions, theirs, rtol=1e-4, atol=1e-6)
    assert relu_hooks(cnn.module) == 0 and relu_hooks(cnn.prepared.original) == 0


def test_guided_gradcam_equals_captums(cnn):
    x, targets = inputs(), torch.tensor([0, 2])
    explainer, params = REGISTRY.parse({"name": "guided_gradcam", "layer": "block4"})
    ours = explain_here(cnn, explainer, params, x, targets, "logit", Settings())
    model = cnn.prepared.original
    theirs = GuidedGradCam(model, model.block4).attribute(x, target=targets, interpolate_mode="bilinear")
    torch.testing.assert_close(ours.attributions, theirs, rtol=1e-4, atol=1e-6)


def test_inplace_and_reused_relus_are_guided_too(resnet):
    """torchvision's resnet calls one ReLU(inplace=True) twice per block; Captum needs them separate."""
    x, targets = inputs(), torch.tensor([4, 0])
    explainer, params = REGISTRY.parse("guided_backprop")
    ours = explain_here(resnet, explainer, params, x, targets, "logit", Settings())
    separate = copy.deepcopy(resnet.prepared.original)
    for module in separate.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    theirs = GuidedBackprop(separate).attribute(x, target=targets)
    scale = theirs.abs().max()
    assert ((ours.attributions - theirs).abs().max() / scale) < 1e-4  # the served model is folded: rounding only
    assert relu_hooks(resnet.module) == 0


def test_a_failing_pass_leaves_no_hook_behind(cnn, monkeypatch):
    explainer, params = REGISTRY.parse("guided_backprop")
    with pytest.raises(RuntimeError, match="out of bounds"):  # class 9 of 4: the pass fails while hooked
        explain_here(cnn, explainer, params, inputs(1), torch.tensor([9]), "logit", Settings())
    assert relu_hooks(cnn.module) == 0 and relu_hooks(cnn.prepared.original) == 0


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


class FunctionalGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu, self.fc = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.gelu(self.relu(self.conv(x))).mean(dim=(2, 3)))


def test_models_whose_relus_are_functions_are_refused_with_the_reason(cnn):
    assert relu_modules_only(cnn.module) is None
    assert "applies ReLU as a function" in relu_modules_only(FunctionalRelu())
    assert relu_modules_only(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())) == "it has no nn.ReLU modules"
    mixed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.GELU(), nn.Flatten())
    assert "GELU activations besides its ReLUs" in (relu_modules_only(mixed) or "")
    assert "applies gelu too" in (relu_modules_only(FunctionalGelu()) or "")
    unfit = dataclasses.replace(cnn, relu_issue=relu_modules_only(FunctionalRelu()))
    explainer, params = REGISTRY.parse("guided_backprop")
    with pytest.raises(InvalidParameter, match="cannot explain model 'm': it applies ReLU as a function") as caught:
        check_method(explainer, params, unfit, Settings())
    assert caught.value.field == "method.name"
    gradient, none = REGISTRY.parse("gradient")
    check_method(gradient, none, unfit, Settings())  # other methods are unaffected
