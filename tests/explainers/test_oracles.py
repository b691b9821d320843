"""Agreement with Captum and pytorch-grad-cam on a random-weight resnet18 at 64x64.

The reference libraries call backward() and register hooks they may leave behind, so each gets its own deep
copy of the model.
"""

import copy

import pytest
import torch
from torch import Tensor, nn

from service.explainers import ExplainContext, PixelSpace, explain
from service.explainers.postprocess import normalize

captum_attr = pytest.importorskip("captum.attr")
grad_cam = pytest.importorskip("pytorch_grad_cam")
model_targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")

pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")

TARGETS = [1, 7]
IMAGENET = PixelSpace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def x() -> Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def oracle_model(resnet18) -> nn.Module:
    return copy.deepcopy(resnet18)


def ours(registry, method, model, x, ctx=None, **params):
    explainer, parsed = registry.parse({"name": method, **params})
    return explain(explainer, model, x, torch.tensor(TARGETS), parsed, ctx or ExplainContext())


def close(actual: Tensor, expected: Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    scale = expected.abs().max().item()
    assert scale > 0, "an all-zero reference would not test much"
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol * scale)


def test_gradient_matches_captum_saliency(registry, resnet18, oracle_model, x):
    expected = captum_attr.Saliency(oracle_model).attribute(x, target=TARGETS, abs=False)
    close(ours(registry, "gradient", resnet18, x).attributions, expected)


def test_input_x_gradient_matches_captum(registry, resnet18, oracle_model, x):
    expected = captum_attr.InputXGradient(oracle_model).attribute(x, target=TARGETS)
    close(ours(registry, "input_x_gradient", resnet18, x).attributions, expected)


@pytest.mark.parametrize(
    ("rule", "captum_method"), [("riemann_right", "riemann_right"), ("gauss_legendre", "gausslegendre")]
)
def test_integrated_gradients_matches_captum(registry, resnet18, oracle_model, x, rule, captum_method):
    expected, delta = captum_attr.IntegratedGradients(oracle_model).attribute(
        x,
        baselines=torch.zeros_like(x),
        target=TARGETS,
        n_steps=5,
        method=captum_method,
        return_convergence_delta=True,
    )
    result = ours(registry, "integrated_gradients", resnet18, x, steps=5, rule=rule, baseline="zero")
    close(result.attributions, expected)
    close(result.diagnostics["completeness_delta"], delta, atol=1e-4)


def test_integrated_gradients_black_baseline_matches_captum(registry, resnet18, oracle_model, x):
    black = ((0 - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)).view(1, 3, 1, 1).expand_as(x)
    expected = captum_attr.IntegratedGradients(oracle_model).attribute(
        x, baselines=black.contiguous(), target=TARGETS, n_steps=5, method="gausslegendre"
    )
    ctx = ExplainContext(pixel_space=IMAGENET)
    result = ours(registry, "integrated_gradients", resnet18, x, ctx, steps=5, baseline="black")
    close(result.attributions, expected)


# layer4 is the default; the other two are overwritten in place later in the block (ReLU(inplace), +=)
@pytest.mark.parametrize("layer", ["layer4", "layer3.1.conv2", "layer4.0.bn1", "layer4.1.bn2"])
def test_gradcam_matches_captum_layer_gradcam(registry, resnet18, oracle_model, x, layer):
    module = dict(oracle_model.named_modules())[layer]
    cam = captum_attr.LayerGradCam(oracle_model, module).attribute(x, target=TARGETS, relu_attributions=True)
    expected = captum_attr.LayerAttribution.interpolate(cam, (64, 64), interpolate_mode="bilinear")[:, 0]
    params = {} if layer == "layer4" else {"layer": layer}
    close(ours(registry, "gradcam", resnet18, x, **params).attributions, expected)


def test_occlusion_matches_captum(registry, resnet18, oracle_model, x):
    expected = captum_attr.Occlusion(oracle_model).attribute(
        x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=0.0, target=TARGETS
    )
    result = ours(registry, "occlusion", resnet18, x, window=16, stride=8, baseline="zero")
    close(result.attributions, expected)


@pytest.mark.parametrize("layer", ["layer4", "layer3"])  # 2x2 and 4x4 maps
@pytest.mark.parametrize(
    ("method", "reference"),
    [("gradcam", "GradCAM"), ("gradcam_pp", "GradCAMPlusPlus"), ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM")],
)
def test_cam_matches_pytorch_grad_cam(registry, resnet18, oracle_model, x, method, reference, layer):
    """pytorch-grad-cam min-max scales each map (and resizes with cv2), so compare the scaled maps."""
    module = dict(oracle_model.named_modules())[layer]
    cam = getattr(grad_cam, reference)(model=oracle_model, target_layers=[module])
    try:
        expected = cam(input_tensor=x, targets=[model_targets.ClassifierOutputTarget(t) for t in TARGETS])
    finally:
        cam.activations_and_grads.release()
    ours_scaled = normalize(ours(registry, method, resnet18, x, layer=layer).attributions, "minmax")
    torch.testing.assert_close(ours_scaled, torch.from_numpy(expected), rtol=0, atol=1e-4)
    assert expected.max() > 0, "all-zero maps (every CAM negative before its ReLU) would not test much"
