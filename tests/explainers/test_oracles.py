"""Agreement with Captum and pytorch-grad-cam on a random-weight resnet18 at 64x64.

The reference libraries call backward() and register hooks they may leave behind, so each gets its own deep
copy of the model.
"""

import copy

import pytest
import torch
from explaining import RunContext, explain
from torch import Tensor, nn

from service.explainers import ExplainContext, PixelSpace
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


def pytorch_grad_cam_maps(reference: str, model: nn.Module, layer: str, x: Tensor, target=None) -> Tensor:
    """pytorch-grad-cam's maps of TARGETS on a copy of the model: min-max scaled (and resized with cv2)."""
    model = copy.deepcopy(model)
    cam = getattr(grad_cam, reference)(model=model, target_layers=[dict(model.named_modules())[layer]])
    target = target or model_targets.ClassifierOutputTarget
    try:
        expected = cam(input_tensor=x, targets=[target(t) for t in TARGETS])
    finally:
        cam.activations_and_grads.release()
    assert expected.max() > 0, "all-zero maps (every CAM negative before its ReLU) would not test much"
    return torch.from_numpy(expected)


def assert_same_scaled_maps(result: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(normalize(result, "minmax"), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("layer", ["layer4", "layer3"])  # 2x2 and 4x4 maps
@pytest.mark.parametrize(
    ("method", "reference"),
    [("gradcam", "GradCAM"), ("gradcam_pp", "GradCAMPlusPlus"), ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM")],
)
def test_cam_matches_pytorch_grad_cam(registry, resnet18, x, method, reference, layer):
    expected = pytorch_grad_cam_maps(reference, resnet18, layer, x)
    assert_same_scaled_maps(ours(registry, method, resnet18, x, layer=layer).attributions, expected)


class SmallCnn(nn.Module):
    """A random CNN at 32x32: layers of 8 channels (16x16, signed: a convolution) and 16 (8x8, after ReLU)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def small_cnn() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(4)
        net = SmallCnn()
        net.features[3].running_mean.uniform_(-0.5, 0.5)
    return net.eval()


# (model, layer): two layers of the small CNN; resnet18's layer2 for Score-CAM (128 channels: 128 passes per
# image), and layer3 and layer4 for Eigen-CAM (layer4: 2x2 maps of 512 channels, more channels than positions)
FORWARD_ONLY_CASES = [
    ("scorecam", "ScoreCAM", "small", "features.0"),
    ("scorecam", "ScoreCAM", "small", "features.4"),
    ("scorecam", "ScoreCAM", "resnet18", "layer2"),
    ("eigencam", "EigenCAM", "small", "features.0"),
    ("eigencam", "EigenCAM", "small", "features.4"),
    ("eigencam", "EigenCAM", "resnet18", "layer3"),
    ("eigencam", "EigenCAM", "resnet18", "layer4"),
]


@pytest.mark.parametrize(("method", "reference", "model_name", "layer"), FORWARD_ONLY_CASES)
def test_forward_only_cams_match_pytorch_grad_cam(registry, resnet18, small_cnn, method, reference, model_name, layer):
    model, size = (resnet18, 64) if model_name == "resnet18" else (small_cnn, 32)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    expected = pytorch_grad_cam_maps(reference, model, layer, x)
    result = ours(registry, method, model, x, RunContext(chunk_size=16), layer=layer).attributions
    assert_same_scaled_maps(result, expected)
    assert not torch.equal(expected[0], expected[1])


def test_scorecam_with_probability_is_pytorch_grad_cams_softmax_target(registry, small_cnn):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    softmax_target = model_targets.ClassifierOutputSoftmaxTarget
    expected = pytorch_grad_cam_maps("ScoreCAM", small_cnn, "features.4", x, softmax_target)
    ctx = RunContext(objective="probability")
    assert_same_scaled_maps(ours(registry, "scorecam", small_cnn, x, ctx, layer="features.4").attributions, expected)
    by_logit = ours(registry, "scorecam", small_cnn, x, layer="features.4").attributions
    assert not torch.allclose(normalize(by_logit, "minmax"), expected, atol=1e-3)  # the objective matters
