"""The GPU path: same maps as on the CPU, models resident on the device, autocast and channels_last options.

Skipped without CUDA; run on a GPU machine with `python -m pytest tests/runner/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from service.core.plans import explain_here
from service.explainers import default_registry
from service.models import ModelPool, load_config
from service.models.prepare import PrepareOptions
from service.settings import Settings

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

METHODS = [
    "gradient",
    {"name": "integrated_gradients", "steps": 8},
    "gradcam",
    "gradcam_pp",
    {"name": "smoothgrad", "samples": 4, "seed": 3},
    {"name": "occlusion", "window": 16, "stride": 16},
    {"name": "scorecam", "layer": "layer2"},  # forward-only masked rows built on the device
    "eigencam",  # the SVD runs on the CPU, on the device's activations
]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuda")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), folder / "r18.pt")
    path = folder / "models.toml"
    path.write_text(
        '[[models]]\nname = "r18"\narchitecture = "torchvision:resnet18"\nweights = "r18.pt"\n'
        "num_classes = 10\ninput_size = [64, 64]\n"
    )
    return path


@pytest.mark.parametrize("method", METHODS, ids=str)
def test_cuda_matches_cpu(config, method):
    cpu = ModelPool(load_config(config), device="cpu").get("r18")
    gpu = ModelPool(load_config(config), device="cuda").get("r18")
    assert next(gpu.module.parameters()).device.type == "cuda"
    explainer, params = default_registry().parse(method)
    x, targets = torch.randn(3, 3, 64, 64), torch.tensor([1, -1, 7])
    settings = Settings(chunk_size=8)
    a = explain_here(cpu, explainer, params, x, targets, "logit", settings)
    b = explain_here(gpu, explainer, params, x, targets, "logit", settings)
    assert b.attributions.device.type == "cpu"
    scale = a.attributions.abs().max()
    if "smoothgrad" in str(method):  # CPU and CUDA generators draw different noise
        assert torch.corrcoef(torch.stack([a.attributions.flatten(), b.attributions.flatten()]))[0, 1] > 0.5
    else:
        torch.testing.assert_close(b.attributions / scale, a.attributions / scale, rtol=1e-3, atol=1e-3)
    assert all(p.grad is None for p in gpu.module.parameters())


@pytest.mark.parametrize("autocast", ["bf16", "fp16"])
def test_autocast_and_channels_last_run_and_stay_close(config, autocast):
    settings = Settings(chunk_size=8, autocast=autocast, channels_last=True)
    pool = ModelPool(load_config(config), device="cuda", prepare=PrepareOptions(channels_last=True))
    reference = ModelPool(load_config(config), device="cuda").get("r18")
    explainer, params = default_registry().parse("gradcam")
    x, targets = torch.randn(2, 3, 64, 64), torch.tensor([2, 5])
    fast = explain_here(pool.get("r18"), explainer, params, x, targets, "logit", settings)
    exact = explain_here(reference, explainer, params, x, targets, "logit", Settings(chunk_size=8))
    assert fast.attributions.dtype == torch.float32 and torch.isfinite(fast.attributions).all()
    corr = torch.corrcoef(torch.stack([fast.attributions.flatten(), exact.attributions.flatten()]))[0, 1]
    assert corr > 0.95
