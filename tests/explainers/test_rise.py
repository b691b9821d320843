"""RISE: the weighted sum of its definition, computed one mask at a time, and masks as the paper draws them."""

from __future__ import annotations

import pytest
import torch

from service.core.plans import explain_here
from service.explainers import PixelSpace, default_registry
from service.explainers.rise import RiseParams, rise_masks
from service.models import ModelPool, ModelSpec
from service.settings import Settings

REGISTRY = default_registry()


@pytest.fixture(scope="module")
def loaded():
    spec = ModelSpec(name="cnn", architecture="python:service.demo.net:shapes_cnn", num_classes=4, input_size=(16, 16))
    return ModelPool([spec], device="cpu").get("cnn")


@pytest.mark.parametrize("chunk", [1, 7])
def test_the_map_is_the_score_weighted_mean_of_the_masks(loaded, chunk):
    x, targets = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)), torch.tensor([1, 3])
    spec = {"name": "rise", "masks": 9, "cell": 5, "p": 0.4, "seed": 2}
    explainer, params = REGISTRY.parse(spec)
    result = explain_here(loaded, explainer, params, x, targets, "probability", Settings(chunk_size=chunk))
    black = PixelSpace(loaded.spec.mean, loaded.spec.std).from_pixels(torch.zeros_like(x))
    model = loaded.prepared.original
    expected = torch.zeros(2, 16, 16)
    for i in range(9):
        mask = rise_masks(i, i + 1, 16, 16, params, x.device)[0, 0]
        with torch.no_grad():
            probs = model(mask * x + (1 - mask) * black).softmax(dim=1)
        expected += probs[torch.arange(2), targets].view(2, 1, 1) * mask
    expected /= 9 * 0.4
    assert result.attributions.shape == x.shape  # one map per image, the same on every channel
    torch.testing.assert_close(result.attributions[:, 0], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(result.attributions[:, 1], result.attributions[:, 0])


def test_masks_are_smooth_shifted_grids_kept_with_probability_p():
    params = RiseParams(masks=400, cell=8, p=0.3, seed=5)
    masks = rise_masks(0, 400, 32, 24, params, torch.device("cpu"))
    assert masks.shape == (400, 1, 32, 24) and masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.3) < 0.03
    assert len({m.numpy().tobytes() for m in masks}) > 380  # grids and shifts vary (a few are all zero)
    assert torch.equal(rise_masks(7, 9, 32, 24, params, torch.device("cpu")), masks[7:9])  # mask i is mask i
    every_cell = rise_masks(0, 3, 32, 24, RiseParams(p=1.0, cell=8), torch.device("cpu"))
    torch.testing.assert_close(every_cell, torch.ones(3, 1, 32, 24))
