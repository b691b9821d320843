"""Exact expected values, from tiny models whose weights are set by hand.

Weights and inputs are small dyadic fractions where possible, so float32 sums are exact and "equal" means
bit for bit. Expected values come from closed forms or plain loops in float64 (convolution, bilinear
upsampling, occlusion windows), never from the engine's own helpers.
"""

import math

import pytest
import torch
from explaining import RunContext, explain
from torch import Tensor, nn

from service.explainers import ExplainContext, PixelSpace

C, H, W, K = 2, 4, 5, 3
PIXEL_SPACE = PixelSpace(mean=(0.5, 0.25), std=(0.25, 0.5))


def dyadic(n: int, modulus: int, denominator: int) -> Tensor:
    return ((torch.arange(n) * 5 % modulus) - modulus // 2).float() / denominator


def linear_weight() -> Tensor:
    return dyadic(K * C * H * W, 7, 4).reshape(K, C * H * W)


def linear_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, K))
    with torch.no_grad():
        model[1].weight.copy_(linear_weight())
        model[1].bias.copy_(torch.tensor([0.5, -0.25, 0.125]))
    return model.eval()


def images(n: int = 2) -> Tensor:
    x = dyadic(n * C * H * W, 11, 8).reshape(n, C, H, W)
    return x.flip(0) + torch.arange(n).view(-1, 1, 1, 1) / 16  # rows differ


def w_rows(targets: list[int]) -> Tensor:
    return linear_weight()[targets].reshape(-1, C, H, W)


def run(registry, method, model, x, targets, ctx=None, **params):
    explainer, parsed = registry.parse({"name": method, **params})
    t = None if targets is None else torch.tensor(targets)
    return explain(explainer, model, x, t, parsed, ctx or ExplainContext())


# ---- gradient and input x gradient -------------------------------------------------------------------


def test_gradient_of_a_linear_logit_is_the_target_weight_row(registry):
    x = images()
    result = run(registry, "gradient", linear_model(), x, [2, 0])
    assert torch.equal(result.attributions, w_rows([2, 0]))
    assert result.targets.tolist() == [2, 0]


def test_targets_none_explains_each_rows_top_class(registry):
    model, x = linear_model(), images(3)
    top = model(x).argmax(dim=1)
    assert len(set(top.tolist())) > 1, "the rows should predict different classes"
    result = run(registry, "gradient", model, x, None)
    assert torch.equal(result.targets, top)
    assert torch.equal(result.attributions, w_rows(top.tolist()))


def test_input_x_gradient_is_x_times_the_weight_row(registry):
    x = images()
    result = run(registry, "input_x_gradient", linear_model(), x, [1, 2])
    assert torch.equal(result.attributions, x * w_rows([1, 2]))


@pytest.mark.parametrize("objective", ["probability", "log_probability"])
def test_objectives_match_the_closed_form_softmax_gradient(registry, objective):
    model, x = linear_model(), images()
    targets = [0, 2]
    p = model(x).double().softmax(dim=1)
    weight = linear_weight().double()
    # d log p_t / dx = w_t - sum_k p_k w_k;  d p_t / dx = p_t * (that)
    dlogp = weight[targets] - p @ weight
    expected = dlogp if objective == "log_probability" else p[[0, 1], targets].unsqueeze(1) * dlogp
    result = run(registry, "gradient", model, x, targets, RunContext(objective=objective))
    torch.testing.assert_close(result.attributions.double(), expected.view(-1, C, H, W), rtol=1e-5, atol=1e-7)


# ---- SmoothGrad family --------------------------------------------------------------------------------


def test_smoothgrad_family_on_a_linear_model_is_exact(registry):
    model, x = linear_model(), images()
    w = w_rows([1, 0])
    for method, expected in [("smoothgrad", w), ("smoothgrad_sq", w * w), ("vargrad", torch.zeros_like(w))]:
        result = run(registry, method, model, x, [1, 0], samples=5, noise=0.3, seed=11)
        assert torch.equal(result.attributions, expected), method


class HalfSquaredNorm(nn.Module):
    """Logits [0.5 * ||x||^2, 0], so for target 0 the gradient at x + e is x + e: it shows the noise."""

    def forward(self, x: Tensor) -> Tensor:
        s = 0.5 * x.pow(2).flatten(1).sum(dim=1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_smoothgrad_noise_is_gaussian_with_sigma_relative_to_each_images_range(registry):
    k, noise = 64, 0.2
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x[1] *= 3  # three times the range: three times the sigma
    sigma = noise * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3)))
    common = dict(samples=k, noise=noise, seed=5)
    var = run(registry, "vargrad", HalfSquaredNorm(), x, [0, 0], **common).attributions
    mean = run(registry, "smoothgrad", HalfSquaredNorm(), x, [0, 0], **common).attributions
    mean_sq = run(registry, "smoothgrad_sq", HalfSquaredNorm(), x, [0, 0], **common).attributions
    # The population variance of k draws has expectation sigma^2 (k-1)/k; 768 pixels average it to ~1%.
    torch.testing.assert_close(var.mean(dim=(1, 2, 3)), sigma**2 * (k - 1) / k, rtol=0.05, atol=0)
    rms = (mean - x).pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.all(rms < 1.2 * sigma / math.sqrt(k)) and torch.all(rms > 0.8 * sigma / math.sqrt(k))
    torch.testing.assert_close(mean_sq, var + mean * mean, rtol=1e-5, atol=1e-6)


# ---- Integrated Gradients -----------------------------------------------------------------------------

RULES = ["gauss_legendre", "riemann_right", "riemann_middle"]


def baseline_of(kind: str, x: Tensor) -> Tensor:
    if kind == "zero":
        return torch.zeros_like(x)
    mean = torch.tensor(PIXEL_SPACE.mean).view(1, -1, 1, 1)
    std = torch.tensor(PIXEL_SPACE.std).view(1, -1, 1, 1)
    return ((0 - mean) / std).expand_as(x)  # black: pixel value 0 in model-input space


@pytest.mark.parametrize("baseline", ["zero", "black"])
@pytest.mark.parametrize("rule", RULES)
def test_integrated_gradients_of_a_linear_logit_is_exact(registry, rule, baseline):
    model, x, targets = linear_model(), images(), [0, 2]
    b = baseline_of(baseline, x)
    ctx = ExplainContext(pixel_space=PIXEL_SPACE)
    result = run(registry, "integrated_gradients", model, x, targets, ctx, steps=4, rule=rule, baseline=baseline)
    torch.testing.assert_close(result.attributions, (x - b) * w_rows(targets), rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        gap = model(x)[[0, 1], targets] - model(b)[[0, 1], targets]
    torch.testing.assert_close(result.attributions.sum(dim=(1, 2, 3)), gap, rtol=1e-5, atol=1e-5)
    assert result.diagnostics["completeness_delta"].abs().max() < 1e-5


class HalfSquaredLinear(nn.Module):
    """Logits 0.5 * (W x)^2: along the path b + a (x - b) the gradient is linear in a."""

    def __init__(self, weight: Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (x.flatten(1) @ self.weight.T).pow(2)


@pytest.mark.parametrize("baseline", ["zero", "black"])
@pytest.mark.parametrize("rule", RULES)
def test_integrated_gradients_quadrature_points_and_weights(registry, rule, baseline):
    """IG = (x-b) w (w.b + (w.d) sum_j c_j a_j): the rule shows through sum_j c_j a_j."""
    steps, targets = 3, [1, 2]
    model, x = HalfSquaredLinear(linear_weight()), images()
    b, d = baseline_of(baseline, x).double(), (x - baseline_of(baseline, x)).double()
    moment = {"riemann_right": (steps + 1) / (2 * steps), "riemann_middle": 0.5, "gauss_legendre": 0.5}[rule]
    w = w_rows(targets).double()
    wb, wd = (w * b).sum(dim=(1, 2, 3)), (w * d).sum(dim=(1, 2, 3))
    expected = d * w * (wb + wd * moment).view(-1, 1, 1, 1)
    exact_gap = 0.5 * (wb + wd) ** 2 - 0.5 * wb**2

    ctx = ExplainContext(pixel_space=PIXEL_SPACE)
    result = run(registry, "integrated_gradients", model, x, targets, ctx, steps=steps, rule=rule, baseline=baseline)
    torch.testing.assert_close(result.attributions.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        result.diagnostics["completeness_delta"].double(), expected.sum(dim=(1, 2, 3)) - exact_gap, rtol=1e-4, atol=1e-5
    )
    # The rules differ by d w (w.d) (moment - 1/2): large enough here to tell them apart.
    assert wd.abs().min() > 0.1


def test_completeness_delta_is_attribution_sum_minus_score_gap(registry):
    model, x, targets = linear_model(), images() * 4, [0, 1]
    ctx = RunContext(objective="probability")
    result = run(
        registry, "integrated_gradients", model, x, targets, ctx, steps=2, rule="riemann_right", baseline="zero"
    )
    with torch.no_grad():
        p_x = model(x).softmax(dim=1)[[0, 1], targets]
        p_b = model(torch.zeros_like(x)).softmax(dim=1)[[0, 1], targets]
    expected = result.attributions.sum(dim=(1, 2, 3)) - (p_x - p_b)
    torch.testing.assert_close(result.diagnostics["completeness_delta"], expected, rtol=1e-5, atol=1e-6)
    assert expected.abs().max() > 1e-3  # two steps on a softmax: the delta is not trivially zero

    finer = run(registry, "integrated_gradients", model, x, targets, ctx, steps=32, baseline="zero")
    assert finer.diagnostics["completeness_delta"].abs().max() < 1e-5


# ---- Grad-CAM and Grad-CAM++ --------------------------------------------------------------------------

CONV = torch.tensor([[[1.0, 0.5], [0.0, -0.5]], [[-1.0, 0.0], [0.25, 1.0]]])  # (2 channels, 2, 2)
HEAD = torch.tensor([[1.0, 2.0], [-1.0, 1.0], [0.5, -3.0]])


def cam_net(inplace: bool = False) -> nn.Module:
    """conv 2x2 stride 2 -> ReLU -> global mean -> linear; layer "0" is the conv, "1" the ReLU."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, kernel_size=2, stride=2, bias=False),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 3),
    )
    with torch.no_grad():
        net[0].weight.copy_(CONV.unsqueeze(1))
        net[4].weight.copy_(HEAD)
        net[4].bias.copy_(torch.tensor([0.0, 0.25, -0.5]))
    return net.eval()


def conv_by_hand(image: Tensor) -> Tensor:
    """(S, S) -> (2, S // 2, S // 2), the stride-2 2x2 convolution as loops."""
    s = image.shape[0] // 2
    out = torch.zeros(2, s, s, dtype=torch.float64)
    for k in range(2):
        for i in range(s):
            for j in range(s):
                out[k, i, j] = sum(
                    CONV[k, u, v].item() * image[2 * i + u, 2 * j + v].item() for u in range(2) for v in range(2)
                )
    return out


def bilinear_by_hand(a: Tensor, size: int) -> Tensor:
    """Half-pixel-centre bilinear resize with edge clamping (align_corners=False), as loops."""
    h, w = a.shape
    out = torch.zeros(size, size, dtype=torch.float64)

    def source(i: int, n_in: int) -> tuple[int, int, float]:
        pos = max((i + 0.5) * n_in / size - 0.5, 0.0)
        lo = min(int(pos), n_in - 1)
        return lo, min(lo + 1, n_in - 1), pos - lo

    for i in range(size):
        y0, y1, fy = source(i, h)
        for j in range(size):
            x0, x1, fx = source(j, w)
            top = (1 - fx) * a[y0, x0] + fx * a[y0, x1]
            bottom = (1 - fx) * a[y1, x0] + fx * a[y1, x1]
            out[i, j] = (1 - fy) * top + fy * bottom
    return out


def cam_images(size: int) -> Tensor:
    return torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(size))


def expected_cam(x: Tensor, targets: list[int], layer: str, method: str) -> Tensor:
    maps = []
    for image, t in zip(x[:, 0], targets, strict=True):
        pre = conv_by_hand(image)
        area = pre.shape[1] * pre.shape[2]
        head = HEAD[t].double().view(2, 1, 1) / area  # dS/dA of the ReLU output: head weight / area
        if layer == "1":
            acts, grads = pre.clamp_min(0), head.expand_as(pre)
        else:  # the conv output: the ReLU passes the gradient where the conv output is positive
            acts, grads = pre, head * (pre > 0)
        if method == "gradcam":
            weights = grads.mean(dim=(1, 2))
        else:
            g2, total = grads**2, acts.sum(dim=(1, 2), keepdim=True)
            alpha = torch.where(grads != 0, g2 / (2 * g2 + total * g2 * grads + 1e-6), 0.0)
            weights = (alpha * grads.clamp_min(0)).sum(dim=(1, 2))
        cam = (weights.view(2, 1, 1) * acts).sum(dim=0).clamp_min(0)
        maps.append(bilinear_by_hand(cam, image.shape[-1]))
    return torch.stack(maps)


@pytest.mark.parametrize("size", [6, 7])  # 3x3 maps upsampled by an integer and a non-integer factor
@pytest.mark.parametrize("layer", [None, "1", "0"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp"])
def test_cam_matches_hand_computation(registry, method, layer, size):
    x, targets = cam_images(size), [0, 2]
    expected = expected_cam(x, targets, layer or "1", method)  # default: the last spatial layer, the ReLU
    assert torch.all(expected.amax(dim=(1, 2)) > 0), "a zero map would not test much"
    params = {} if layer is None else {"layer": layer}
    result = run(registry, method, cam_net(), x, targets, **params)
    assert result.attributions.shape == (2, size, size)
    torch.testing.assert_close(result.attributions.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp"])
def test_cam_of_a_layer_whose_output_is_later_modified_in_place(registry, method):
    """ReLU(inplace=True) overwrites the conv output; the CAM must still use the conv output and its gradient."""
    x, targets = cam_images(6), [0, 2]
    result = run(registry, method, cam_net(inplace=True), x, targets, layer="0")
    torch.testing.assert_close(
        result.attributions.double(), expected_cam(x, targets, "0", method), rtol=1e-5, atol=1e-6
    )


# ---- occlusion ----------------------------------------------------------------------------------------


def window_starts_by_definition(size: int, window: int, stride: int) -> list[int]:
    """Multiples of the stride until a window reaches the far edge."""
    starts = [0]
    while starts[-1] + window < size:
        starts.append(starts[-1] + stride)
    return starts


def occlusion_by_brute_force(model, x, targets, window, stride, baseline):
    with torch.no_grad():
        s_x = model(x)[range(len(x)), targets]
    total = torch.zeros(len(x), x.shape[2], x.shape[3], dtype=torch.float64)
    count = torch.zeros(x.shape[2], x.shape[3], dtype=torch.float64)
    for r in window_starts_by_definition(x.shape[2], window, stride):
        for c in window_starts_by_definition(x.shape[3], window, stride):
            occluded = x.clone()
            occluded[:, :, r : r + window, c : c + window] = baseline[:, :, r : r + window, c : c + window]
            with torch.no_grad():
                drop = s_x - model(occluded)[range(len(x)), targets]
            total[:, r : r + window, c : c + window] += drop.double().view(-1, 1, 1)
            count[r : r + window, c : c + window] += 1
    assert count.min() >= 1, "every pixel is covered"
    return (total / count).unsqueeze(1).expand(-1, x.shape[1], -1, -1)


@pytest.mark.parametrize(
    ("height", "width", "window", "stride"),
    [
        (10, 11, 4, 3),  # rows: windows end at the edge; columns: the last window is cut short
        (7, 9, 3, 2),
        (8, 8, 4, 4),  # no overlap
        (5, 6, 8, 4),  # one window larger than the image
    ],
)
@pytest.mark.parametrize("baseline", ["zero", "black"])
def test_occlusion_is_the_mean_drop_over_covering_windows(registry, height, width, window, stride, baseline):
    model = nn.Sequential(nn.Flatten(), nn.Linear(C * height * width, K)).eval()
    with torch.no_grad():
        model[1].weight.copy_(dyadic(K * C * height * width, 7, 4).reshape(K, -1))
    x = dyadic(2 * C * height * width, 11, 8).reshape(2, C, height, width) + 0.0625
    targets = [2, 1]
    ctx = ExplainContext(pixel_space=PIXEL_SPACE)
    result = run(registry, "occlusion", model, x, targets, ctx, window=window, stride=stride, baseline=baseline)
    expected = occlusion_by_brute_force(model, x, targets, window, stride, baseline_of(baseline, x))
    torch.testing.assert_close(result.attributions.double(), expected, rtol=1e-5, atol=1e-6)


def test_occlusion_of_a_linear_logit_is_the_windowed_sum_of_w_times_x(registry):
    """Closed form for one layout: a window's drop is sum over it of w x (zero baseline)."""
    height, width, window, stride = 10, 11, 4, 3
    model = nn.Sequential(nn.Flatten(), nn.Linear(C * height * width, 1, bias=False)).eval()
    with torch.no_grad():
        model[1].weight.copy_(dyadic(C * height * width, 7, 4).view(1, -1))
    x = dyadic(C * height * width, 11, 8).reshape(1, C, height, width)
    contribution = (model[1].weight.view(C, height, width) * x[0]).sum(dim=0).double()  # (H, W)
    rows = window_starts_by_definition(height, window, stride)
    cols = window_starts_by_definition(width, window, stride)
    assert cols[-1] + window > width, "the last column window is cut short"
    expected = torch.zeros(height, width, dtype=torch.float64)
    for i in range(height):
        for j in range(width):
            drops = [
                contribution[r : r + window, c : c + window].sum()
                for r in rows
                for c in cols
                if r <= i < r + window and c <= j < c + window
            ]
            expected[i, j] = sum(drops) / len(drops)
    result = run(registry, "occlusion", model, x, [0], window=window, stride=stride, baseline="zero")
    torch.testing.assert_close(result.attributions[0].double(), expected.expand(C, -1, -1), rtol=1e-6, atol=1e-6)
