"""CAM maps of vision transformers against pytorch-grad-cam's, with the `reshape_transform` its
documentation gives for each: ViT tokens (class token dropped, patches to the grid) and Swin's
channels-last stages (permuted to channels-first)."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from explaining import RunContext, explain
from torch import Tensor, nn

from service.explainers.postprocess import normalize

grad_cam = pytest.importorskip("pytorch_grad_cam")
model_targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
timm = pytest.importorskip("timm")

TARGETS = [1, 7]
METHODS = [
    ("gradcam", "GradCAM"),
    ("gradcam_pp", "GradCAMPlusPlus"),
    ("xgradcam", "XGradCAM"),
    ("layercam", "LayerCAM"),
]


def seeded(build, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build()
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.normal_(head.weight, std=0.5)  # torchvision's ViT starts with an all-zero head
    return model.eval()


@pytest.fixture(scope="module")
def vit() -> nn.Module:
    return seeded(lambda: torchvision.models.VisionTransformer(64, 16, 2, 2, 32, 64, num_classes=10))


@pytest.fixture(scope="module")
def swin() -> nn.Module:
    # In float64: Grad-CAM++'s cubed gradients make float32 rounding through 12 blocks show at 5e-4
    # (both agree to 2e-7 in float64).
    return seeded(lambda: torchvision.models.swin_t(num_classes=10)).double()


def tokens_to_grid(prefix: int, side: int):
    def reshape(tensor: Tensor) -> Tensor:  # pytorch-grad-cam's vit_example.py
        result = tensor[:, prefix:, :].reshape(tensor.size(0), side, side, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return reshape


def reference(name: str, model: nn.Module, layer: str, x: Tensor, reshape) -> Tensor:
    model = copy.deepcopy(model)
    cam = getattr(grad_cam, name)(model=model, target_layers=[model.get_submodule(layer)], reshape_transform=reshape)
    try:
        expected = cam(input_tensor=x, targets=[model_targets.ClassifierOutputTarget(t) for t in TARGETS])
    finally:
        cam.activations_and_grads.release()
    assert expected.max() > 0, "all-zero maps would not test much"
    return torch.from_numpy(expected)


def ours(registry, method: str, model: nn.Module, x: Tensor, layer: str | None = None) -> Tensor:
    explainer, params = registry.parse({"name": method, **({"layer": layer} if layer else {})})
    return explain(explainer, model, x, torch.tensor(TARGETS), params, RunContext()).attributions


def same(result: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(normalize(result.float(), "minmax"), expected.float(), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("method", "name"), METHODS)
def test_vit_maps_are_pytorch_grad_cams_at_the_default_layer(registry, vit, method, name):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = reference(name, vit, "encoder.layers.encoder_layer_1.ln_1", x, tokens_to_grid(1, 4))
    same(ours(registry, method, vit, x), expected)  # no layer given: the default is that ln_1


@pytest.mark.parametrize(("method", "name"), METHODS[:2])
def test_timm_vit_maps_are_pytorch_grad_cams(registry, method, name):
    model = seeded(lambda: timm.create_model("test_vit", num_classes=10))
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    expected = reference(name, model, "blocks.5.norm1", x, tokens_to_grid(1, 10))
    same(ours(registry, method, model, x), expected)


@pytest.mark.parametrize(("method", "name"), METHODS[:2])
@pytest.mark.parametrize("layer", ["features.7.1", "features.5"])  # the default, and a 14x14 stage
def test_swin_maps_are_pytorch_grad_cams_channels_last(registry, swin, method, name, layer):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = reference(name, swin, layer, x, lambda t: t.permute(0, 3, 1, 2))
    result = ours(registry, method, swin, x, layer)
    same(result, expected)
    # Read as (N, C, H, W) the stage's maps come out transposed at best: the layout is not guessed.
    assert not torch.allclose(normalize(result.float(), "minmax"), expected.float().transpose(-1, -2), atol=1e-2)


def test_eigencam_and_scorecam_on_a_vit(registry, vit):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    layer = "encoder.layers.encoder_layer_1.ln_1"
    for method, name in (("eigencam", "EigenCAM"), ("scorecam", "ScoreCAM")):
        same(ours(registry, method, vit, x), reference(name, vit, layer, x, tokens_to_grid(1, 4)))
