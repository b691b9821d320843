"""service.models.prepare: BatchNorm folding, channels_last and torch.compile, each checked or dropped."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from service.core.plans import explain_here, pass_module
from service.explainers import default_registry
from service.models import ModelPool
from service.models import prepare as prepare_module
from service.models.prepare import PrepareOptions, fold_batchnorm, prepare
from service.settings import Settings

REGISTRY = default_registry()
METHODS = {
    "gradient": {},
    "input_x_gradient": {},
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"samples": 4, "seed": 3},
    "gradcam": {},
    "gradcam_pp": {},
    "occlusion": {"window": 8, "stride": 4},
}


def resnet18_with_statistics(num_classes: int = 5) -> nn.Module:
    """A random resnet18 whose BatchNorms have non-trivial running statistics, as a trained one has."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = torchvision.models.resnet18(num_classes=num_classes)
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.normal_(0, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("prepare") / "r18.pt"
    torch.save(resnet18_with_statistics().state_dict(), path)
    return path


def pool(weights, **options) -> ModelPool:
    from service.models import ModelSpec

    spec = ModelSpec(
        name="r18", architecture="torchvision:resnet18", weights=weights, num_classes=5, input_size=(32, 32)
    )
    return ModelPool([spec], device="cpu", prepare=PrepareOptions(**options))


def probe(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(5))


def test_folding_keeps_the_module_tree_and_the_outputs():
    model = resnet18_with_statistics()
    folded, convs = fold_batchnorm(model)
    assert "conv1" in convs and "layer1.0.conv2" in convs and len(convs) == 20  # downsample convs too
    assert dict(model.named_modules()).keys() == dict(folded.named_modules()).keys()
    assert isinstance(folded.bn1, nn.Identity) and isinstance(model.bn1, nn.BatchNorm2d)  # the original is untouched
    assert not torch.equal(folded.conv1.weight, model.conv1.weight)
    x = probe()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
        # A block's output is unchanged, a folded convolution's own output is not.
        torch.testing.assert_close(
            folded.layer1(folded.maxpool(folded.relu(folded.conv1(x)))),
            model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))),
            rtol=1e-4,
            atol=1e-4,
        )
        assert not torch.allclose(folded.conv1(x), model.conv1(x), atol=1e-3)


@pytest.mark.parametrize("name", list(METHODS))
def test_folded_and_unfolded_models_give_the_same_maps(weights, name):
    folded = pool(weights).get("r18")
    plain = pool(weights, fold_batchnorm=False).get("r18")
    assert folded.prepared is not None and len(folded.prepared.folded) == 20
    assert plain.prepared is not None and not plain.prepared.folded
    explainer, params = REGISTRY.parse({"name": name, **METHODS[name]})
    x, targets = probe(3), torch.tensor([-1, 2, 4])
    settings = Settings(chunk_size=5)
    a = explain_here(folded, explainer, params, x, targets, "logit", settings)
    b = explain_here(plain, explainer, params, x, targets, "logit", settings)
    assert torch.equal(a.targets, b.targets)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-4)
    scale = b.attributions.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(-1, *[1] * (b.attributions.dim() - 1))
    assert ((a.attributions - b.attributions).abs() / scale).max() < 1e-3


def test_a_cam_on_a_folded_convolution_runs_on_the_unfolded_model(weights):
    folded = pool(weights).get("r18")
    plain = pool(weights, fold_batchnorm=False).get("r18")
    assert folded.prepared is not None
    explainer, params = REGISTRY.parse({"name": "gradcam", "layer": "layer4.1.conv2"})
    assert pass_module(folded, [(explainer, params)]) is folded.prepared.original
    block = REGISTRY.parse({"name": "gradcam", "layer": "layer4"})
    assert pass_module(folded, [block]) is folded.module is not folded.prepared.original
    x, targets = probe(2), torch.tensor([1, 3])
    a = explain_here(folded, explainer, params, x, targets, "logit", Settings())
    b = explain_here(plain, explainer, params, x, targets, "logit", Settings())
    torch.testing.assert_close(a.attributions, b.attributions, rtol=1e-4, atol=1e-6)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if y.mean() > 0:
            y = y * 2
        return self.fc(y.mean(dim=(2, 3)))


class SharedConv(nn.Module):
    """One convolution called twice, a BatchNorm after one call only: folding would change the other."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc((self.bn(self.conv(x)) + self.conv(x)).mean(dim=(2, 3)))


def test_an_untraceable_model_is_served_unfolded_with_the_reason():
    model = Branchy().eval()
    out = prepare(model, probe(), PrepareOptions())
    assert out.module is model and not out.folded
    assert out.notes == ["BatchNorm not folded: the model cannot be traced by torch.fx (TraceError)"]


def test_a_convolution_called_twice_is_not_folded():
    model = SharedConv().eval()
    assert fold_batchnorm(model) == (model, [])
    assert "no eval-mode BatchNorm2d directly after a Conv2d" in prepare(model, probe(), PrepareOptions()).notes[0]


def test_a_fold_that_changes_the_outputs_is_dropped(monkeypatch):
    model = resnet18_with_statistics()

    def broken(module):
        folded, names = fold_batchnorm(module)
        folded.fc.bias.data += 1.0  # a folding bug, as the check must see it
        return folded, names

    monkeypatch.setattr(prepare_module, "fold_batchnorm", broken)
    out = prepare(model, probe(), PrepareOptions())
    assert out.module is model and not out.folded
    assert out.notes[0].startswith("BatchNorm not folded: the folded model's logits differ from the exact ones")


def test_folding_can_be_turned_off(weights):
    loaded = pool(weights, fold_batchnorm=False).get("r18")
    assert loaded.prepared is not None and loaded.prepared.notes == []
    assert isinstance(loaded.module.bn1, nn.BatchNorm2d)


def test_channels_last_reaches_the_served_model(weights):
    loaded = pool(weights, channels_last=True).get("r18")
    assert loaded.module.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert loaded.prepared is not None and loaded.prepared.original.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )


def test_a_compile_failure_falls_back_to_eager(monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler\nmore detail")

    monkeypatch.setattr(torch, "compile", no_compiler)
    model = resnet18_with_statistics()
    out = prepare(model, probe(), PrepareOptions(compile=True))
    assert out.compiled is None and out.for_layers(set()) is out.module
    assert out.notes[-1] == "not compiled, eager instead: RuntimeError: no C++ compiler"


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def test_compiled_passes_match_eager_and_hooked_passes_stay_eager():
    torch.manual_seed(0)
    model = Tiny().eval()
    out = prepare(model, probe(2, 8), PrepareOptions(compile=True, compile_sizes=(1, 3)))
    assert out.compiled is not None, out.notes
    assert out.for_layers(set()) is out.compiled and out.for_layers({"conv"}) is model
    assert out.for_layers({"bn"}) is out.module  # not a folded conv: the folded eager model
    x = probe(5, 8)  # a batch size it was not warmed up for
    with torch.inference_mode():
        torch.testing.assert_close(out.compiled(x), model(x), rtol=1e-4, atol=1e-5)
