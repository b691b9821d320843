"""The contract every registered method meets, driven by one case table over the registry."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.modules.module as module_lib
import torchvision
from explaining import RunContext, explain
from torch import Tensor, nn

from service.errors import InvalidParameter, UnknownMethod
from service.explainers import Capabilities, Cost, ExplainContext, Params, default_registry

# Small parameters per method; MODELS overrides what depends on the image size.
CASES: dict[str, dict] = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"samples": 4, "seed": 3},
    "smoothgrad_sq": {"samples": 4, "seed": 3},
    "vargrad": {"samples": 4, "seed": 3},
    "integrated_gradients": {"steps": 4},
    "gradcam": {},
    "gradcam_pp": {},
    "occlusion": {"window": 8, "stride": 8},
    "guided_backprop": {},
    "guided_gradcam": {},
    "xgradcam": {},
    "layercam": {},
    "rise": {"masks": 6, "cell": 4, "seed": 1},
    "scorecam": {},
    "eigencam": {},
    "attention_rollout": {"discard_ratio": 0.5},
    "attention_relevance": {},
}
METHODS = list(CASES)
SEEDED = [name for name, params in CASES.items() if "samples" in params]
LAYERED = [e.name for e in default_registry() if e.capabilities.uses_layer]


class SmallNet(nn.Module):
    def __init__(self, classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def small_net() -> SmallNet:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = SmallNet()
        net.features[3].running_mean.uniform_(-0.5, 0.5)
        net.features[3].running_var.uniform_(0.5, 2.0)
    return net.eval()


def tiny_vit(classes: int = 5) -> nn.Module:
    """torchvision's ViT at 16 px: 4x4 patches and a class token, 2 blocks; a head that is not all zeros."""
    with torch.random.fork_rng():
        torch.manual_seed(2)
        vit = torchvision.models.VisionTransformer(16, 4, 2, 2, 16, 32, num_classes=classes)
        nn.init.normal_(vit.heads.head.weight, std=0.5)
    return vit.eval()


def images(n: int, size: int, seed: int = 0) -> Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


MODELS = {  # name -> (image size, classes, parameter overrides per method)
    "small": (16, 5, {}),
    # at 32x32 layer4 is 1x1, so the CAMs find layer3 (2x2) by themselves
    # Score-CAM makes a pass per channel: layer1's 64, not layer3's 256
    "resnet18": (32, 10, {"occlusion": {"window": 16, "stride": 16}, "scorecam": {"layer": "layer1"}}),
    "vit": (16, 5, {}),
}


@pytest.fixture(scope="module", params=list(MODELS))
def subject(request, resnet18):
    """(name, model, two images, number of classes)."""
    name = request.param
    size, classes, _ = MODELS[name]
    model = {"small": small_net, "resnet18": lambda: resnet18, "vit": tiny_vit}[name]()
    return name, model, images(2, size), classes


def parse(registry, method: str, model_name: str = "small", **overrides):
    params = {**CASES[method], **MODELS[model_name][2].get(method, {}), **overrides}
    return registry.parse({"name": method, **params})


def run(registry, method, model, x, targets, model_name="small", ctx=None, **overrides):
    capabilities = registry.get(method).capabilities
    if capabilities.reads_attention and model_name != "vit":
        pytest.skip(f"{method} explains transformers only (test_attention.py: CNNs get a 422)")
    if capabilities.guided_relu and model_name == "vit":
        pytest.skip(f"{method} needs nn.ReLU modules, which a ViT has none of")
    explainer, params = parse(registry, method, model_name, **overrides)
    t = None if targets is None else torch.as_tensor(targets)
    return explain(explainer, model, x, t, params, ctx or ExplainContext())


def hooks_left(model: nn.Module) -> list[str]:
    """Every non-empty hook dict on the model's modules, and torch's global module hooks."""
    found = [
        f"{name or '<root>'}.{attr}"
        for name, module in model.named_modules()
        for attr, value in vars(module).items()
        if "hook" in attr and isinstance(value, dict) and value
    ]
    found += [
        name
        for name, value in vars(module_lib).items()
        if name.startswith("_global_") and "hook" in name and isinstance(value, dict) and value
    ]
    return found


def close(a: Tensor, b: Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * max(1.0, b.abs().max().item()))


def test_case_table_covers_the_registry(registry):
    """Every method that explains image classifiers (drise, for detectors only: test_detection_oracles.py)."""
    assert sorted(CASES) == sorted(e.name for e in registry if "image" in e.capabilities.modalities)


# ---- shapes, values, targets --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_output_contract(registry, subject, method):
    model_name, model, x, classes = subject
    explainer, _ = parse(registry, method, model_name)
    result = run(registry, method, model, x, [1, 3], model_name)
    n, c, h, w = x.shape
    expected = (n, c, h, w) if explainer.capabilities.output == "pixel" else (n, h, w)
    assert result.attributions.shape == expected
    assert result.attributions.dtype == torch.float32
    assert torch.isfinite(result.attributions).all()
    peaks = result.attributions.abs().amax(dim=tuple(range(1, result.attributions.dim())))
    if explainer.capabilities.output == "cam":
        assert (result.attributions >= 0).all()  # ReLU'd
        # A CAM may be all zero by definition (no channel votes for the class), and on the tiny random net its
        # values (~1e-3) come from a sum that cancels, so rounding alone can zero one row: one row must show.
        assert peaks.gt(0).any()
    else:
        assert peaks.gt(0).all()
    assert not result.attributions.requires_grad
    with torch.no_grad():
        close(result.logits, model(x))
    assert result.logits.shape == (n, classes)
    assert result.targets.tolist() == [1, 3]
    assert ("completeness_delta" in result.diagnostics) == explainer.capabilities.convergence_delta
    for name, value in result.diagnostics.items():
        assert value.shape == (n,), name


@pytest.mark.parametrize("method", METHODS)
def test_targets_none_explains_the_top_class(registry, subject, method):
    model_name, model, x, _ = subject
    with torch.no_grad():
        top = model(x).argmax(dim=1)
    implicit = run(registry, method, model, x, None, model_name)
    explicit = run(registry, method, model, x, top, model_name)
    assert torch.equal(implicit.targets, top)
    close(implicit.attributions, explicit.attributions)


@pytest.mark.parametrize("method", METHODS)
def test_targets_are_per_row(registry, subject, method):
    model_name, model, x, _ = subject
    both = run(registry, method, model, x, [2, 4], model_name)
    first = run(registry, method, model, x[:1], [2], model_name)
    second = run(registry, method, model, x[1:], [4], model_name)
    close(both.attributions, torch.cat([first.attributions, second.attributions]))
    # and the rows really depend on their target, where the method has one
    swapped = run(registry, method, model, x, [4, 2], model_name)
    if not registry.get(method).capabilities.uses_target:
        close(swapped.attributions, both.attributions)
        assert swapped.targets.tolist() == [4, 2]
        return
    if method in LAYERED and max(both.attributions.abs().max(), swapped.attributions.abs().max()) == 0:
        # A CAM is ReLU(sum): on this random net every CAM of both classes can be negative, so zero.
        pytest.skip(f"{method}: all four CAMs are zero on this random net; the oracles test the values")
    assert not torch.allclose(both.attributions, swapped.attributions)


def test_negative_target_explains_the_rows_top_class(registry):
    model, x = small_net(), images(2, 16)
    with torch.no_grad():
        top = model(x).argmax(dim=1)
    mixed = run(registry, "gradient", model, x, [-1, 2])
    assert mixed.targets.tolist() == [top[0].item(), 2]
    close(mixed.attributions, run(registry, "gradient", model, x, [top[0].item(), 2]).attributions)


@pytest.mark.parametrize("method", METHODS)
def test_chunk_size_does_not_change_results(registry, subject, method):
    model_name, model, x, _ = subject
    results = [run(registry, method, model, x, [1, 3], model_name, RunContext(chunk_size=size)) for size in (64, 3, 1)]
    for other in results[1:]:
        close(other.attributions, results[0].attributions)
        close(other.logits, results[0].logits)
        for name, value in results[0].diagnostics.items():
            close(other.diagnostics[name], value)


# ---- SmoothGrad seeds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SEEDED)
def test_seed_reproduces_bit_for_bit(registry, method):
    model, x = small_net(), images(2, 16)
    first = run(registry, method, model, x, [1, 3], seed=7)
    again = run(registry, method, model, x, [1, 3], seed=7)
    other = run(registry, method, model, x, [1, 3], seed=8)
    assert torch.equal(first.attributions, again.attributions)
    assert not torch.allclose(first.attributions, other.attributions)
    assert first.diagnostics["seed"].tolist() == [7, 7]


@pytest.mark.parametrize("method", SEEDED)
def test_unseeded_runs_differ_and_report_their_seed(registry, method):
    model, x = small_net(), images(1, 16)
    first = run(registry, method, model, x, [1], seed=None)
    second = run(registry, method, model, x, [1], seed=None)
    assert not torch.allclose(first.attributions, second.attributions)
    replay = run(registry, method, model, x, [1], seed=first.diagnostics["seed"].item())
    assert torch.equal(replay.attributions, first.attributions)


# ---- no side effects ----------------------------------------------------------------------------------


def model_state(model: nn.Module):
    return (
        model.training,
        [(n, p.requires_grad) for n, p in model.named_parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
    )


@pytest.mark.parametrize("method", METHODS)
def test_no_side_effects_on_the_model(registry, subject, method):
    model_name, model, x, _ = subject
    training, flags, state = model_state(model)
    run(registry, method, model, x, [1, 3], model_name)
    run(registry, method, model, x, None, model_name, RunContext(chunk_size=1, objective="probability"))
    assert model.training is training is False
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert after.keys() == state.keys()
    assert all(torch.equal(after[k], v) for k, v in state.items())
    assert hooks_left(model) == []


@pytest.mark.parametrize("method", METHODS)
def test_frozen_parameters_give_the_same_result(registry, method):
    model, x = small_net(), images(2, 16)
    reference = run(registry, method, model, x, [1, 3]).attributions
    model.requires_grad_(False)
    close(run(registry, method, model, x, [1, 3]).attributions, reference)
    assert all(not p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_works_inside_no_grad(registry, method):
    model, x = small_net(), images(2, 16)
    reference = run(registry, method, model, x, [1, 3]).attributions
    with torch.no_grad():
        close(run(registry, method, model, x, [1, 3]).attributions, reference)


# ---- failures -----------------------------------------------------------------------------------------


class FailsOnCall(SmallNet):
    """Raises in its `fail_on`-th forward, after the features (where CAM methods hook) ran."""

    def __init__(self, fail_on: int):
        super().__init__()
        self.fail_on, self.calls = fail_on, 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        features = self.features(x)
        if self.calls >= self.fail_on:
            raise RuntimeError("forward failed")
        return self.head(features)


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        raise RuntimeError("backward failed")


class FailsOnBackward(SmallNet):
    def forward(self, x: Tensor) -> Tensor:
        return self.head(_FailingBackward.apply(self.features(x)))


LAYER_CHOICES = [(m, {}) for m in METHODS] + [(m, {"layer": "features"}) for m in LAYERED]


@pytest.mark.parametrize("fail_on", [1, 2])  # CAM methods: in the layer search, or with the hook on
@pytest.mark.parametrize(("method", "overrides"), LAYER_CHOICES)
def test_hooks_removed_when_the_forward_fails(registry, method, overrides, fail_on):
    model = FailsOnCall(fail_on).eval()
    with pytest.raises(RuntimeError, match="forward failed"):  # chunks of 1: every method makes 2+ passes
        run(registry, method, model, images(2, 16), [1, 3], ctx=RunContext(chunk_size=1), **overrides)
    assert hooks_left(model) == []
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_backward_only_where_the_capabilities_say(registry, method):
    model = FailsOnBackward().eval()
    explainer, _ = parse(registry, method)
    if explainer.capabilities.needs_gradients:
        with pytest.raises(RuntimeError, match="backward failed"):
            run(registry, method, model, images(2, 16), [1, 3])
    else:
        run(registry, method, model, images(2, 16), [1, 3])
    assert hooks_left(model) == []


@pytest.mark.parametrize("method", LAYERED)
@pytest.mark.parametrize("layer", ["nope", "features.9", "head.2"])  # missing, missing, 2-D output
def test_unusable_cam_layer_is_an_invalid_parameter(registry, method, layer):
    model = small_net()
    with pytest.raises(InvalidParameter) as raised:
        run(registry, method, model, images(2, 16), [1, 3], layer=layer)
    assert raised.value.field == "method.layer"
    assert hooks_left(model) == []


def test_cam_layer_from_the_context(registry, resnet18):
    x = images(2, 64)
    default = run(registry, "gradcam", resnet18, x, [1, 3]).attributions  # resnet18: layer4
    by_ctx = run(registry, "gradcam", resnet18, x, [1, 3], ctx=ExplainContext(layer="layer4")).attributions
    other = run(registry, "gradcam", resnet18, x, [1, 3], ctx=ExplainContext(layer="layer3")).attributions
    assert torch.equal(default, by_ctx)
    assert not torch.allclose(default, other)
    with pytest.raises(InvalidParameter):
        run(registry, "gradcam", resnet18, x, [1, 3], ctx=ExplainContext(layer="layer9"))


# ---- concurrency --------------------------------------------------------------------------------------


def test_threads_sharing_a_model_get_sequential_results(registry):
    model, inputs = small_net(), [images(2, 16, seed) for seed in range(4)]
    jobs = [(method, i) for i in range(4) for method in ("gradcam", "gradcam_pp", "gradient")] * 4

    def work(job):
        method, i = job
        layer = {"layer": "features.2"} if method == "gradcam_pp" else {}
        return run(registry, method, model, inputs[i], [i, 4 - i], **layer).attributions

    sequential = {job: work(job) for job in set(jobs)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(work, jobs))
    for job, result in zip(jobs, concurrent, strict=True):
        close(result, sequential[job])
    assert hooks_left(model) == []


# ---- registry -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_registry_describes_each_method(registry, method):
    explainer = registry.get(method)
    assert explainer.name == method
    assert isinstance(explainer.description, str) and explainer.description
    assert isinstance(explainer.capabilities, Capabilities)
    assert explainer.capabilities.output in ("pixel", "cam")
    assert issubclass(explainer.params_model, Params)
    schema = explainer.params_model.model_json_schema()
    json.dumps(schema)
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    properties = schema.get("properties", {})
    assert set(properties) == set(explainer.params_model.model_fields)
    assert ("layer" in properties) == explainer.capabilities.uses_layer
    cost = explainer.cost(explainer.params_model(), (64, 64))
    assert isinstance(cost, Cost) and cost.forward >= 1
    assert (cost.backward > 0) == explainer.capabilities.needs_gradients
    assert cost.driver is None or cost.driver in properties


def test_parse_accepts_a_name_or_a_spec(registry):
    explainer, params = registry.parse("integrated_gradients")
    assert explainer.name == "integrated_gradients" and params == explainer.params_model()
    explainer, params = registry.parse({"name": "integrated_gradients", "steps": 7, "rule": "riemann_middle"})
    assert (params.steps, params.rule) == (7, "riemann_middle")
    with pytest.raises(ValueError):  # frozen: a parsed spec cannot change under a running request
        params.steps = 8


@pytest.mark.parametrize(
    ("spec", "error", "field"),
    [
        ("nope", UnknownMethod, "method.name"),
        ({"name": "nope"}, UnknownMethod, "method.name"),
        ({"steps": 4}, InvalidParameter, "method.name"),
        ({"name": "integrated_gradients", "steps": 0}, InvalidParameter, "method.steps"),
        ({"name": "integrated_gradients", "rule": "simpson"}, InvalidParameter, "method.rule"),
        ({"name": "integrated_gradients", "baseline": "grey"}, InvalidParameter, "method.baseline"),
        ({"name": "smoothgrad", "samples": "many"}, InvalidParameter, "method.samples"),
        ({"name": "smoothgrad", "noise": 1.5}, InvalidParameter, "method.noise"),
        ({"name": "smoothgrad", "seed": -1}, InvalidParameter, "method.seed"),
        ({"name": "gradient", "steps": 4}, InvalidParameter, "method.steps"),  # unknown fields are errors
        ({"name": "occlusion", "window": 0}, InvalidParameter, "method.window"),
        # windows at multiples of a stride longer than the window would leave pixels uncovered
        ({"name": "occlusion", "window": 2, "stride": 3}, InvalidParameter, "method.stride"),
        ({"name": "gradcam", "layer": "x" * 201}, InvalidParameter, "method.layer"),
    ],
)
def test_parse_errors(registry, spec, error, field):
    with pytest.raises(error) as raised:
        registry.parse(spec)
    assert raised.value.field == field
