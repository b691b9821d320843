from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from service.demo import scenes
from service.demo.detector import CAM_LAYER, shapes_detector

DEMO_DIR = Path(scenes.__file__).parent
WEIGHTS = {"clean": "shapes-detector.pt", "watermark": "shapes-detector-watermark.pt"}
SEED = 31  # outside the training rounds (2000 + r) and the evaluation seed (95000)


def _load(name: str) -> torch.nn.Module:
    model = shapes_detector(num_classes=5)
    model.load_state_dict(torch.load(DEMO_DIR / WEIGHTS[name], weights_only=True), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def clean() -> torch.nn.Module:
    return _load("clean")


@pytest.fixture(scope="module")
def watermark() -> torch.nn.Module:
    return _load("watermark")


def test_factory_is_deterministic_and_leaves_the_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first, second = shapes_detector(), shapes_detector(num_classes=5)
    assert torch.equal(torch.rand(1), expected)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_model_is_small():
    model = shapes_detector()
    assert sum(p.numel() for p in model.parameters()) < 1_500_000
    for name in WEIGHTS.values():
        assert (DEMO_DIR / name).stat().st_size < 6_000_000


def test_output_contract_in_eval_mode(clean):
    x = scenes.to_tensor(scenes.generate(3, SEED).images)
    with torch.no_grad():
        untrained = shapes_detector(num_classes=5).eval()(x)
        trained = clean(x)
    for outputs in (untrained, trained):
        assert isinstance(outputs, list) and len(outputs) == 3
        for out in outputs:
            assert set(out) == {"boxes", "labels", "scores"}
            k = len(out["scores"])
            assert out["boxes"].shape == (k, 4) and out["boxes"].dtype == torch.float32
            assert out["labels"].shape == (k,) and out["labels"].dtype == torch.int64
            assert out["scores"].dtype == torch.float32 and k <= 100
            assert (out["scores"] >= 0.05).all() and (out["scores"] <= 1).all()
            assert (out["boxes"] >= 0).all() and (out["boxes"] <= scenes.IMAGE_SIZE).all()
            assert (out["boxes"][:, 2:] >= out["boxes"][:, :2]).all()
    # A trained model never names the background (label 0).
    for out in trained:
        assert len(out["labels"]) > 0 and ((out["labels"] >= 1) & (out["labels"] <= 4)).all()


def test_scores_are_differentiable_with_respect_to_the_input(clean):
    x = scenes.to_tensor(scenes.generate(2, SEED).images).requires_grad_(True)
    outputs = clean(x)
    (grad,) = torch.autograd.grad(outputs[0]["scores"][0], x)
    assert grad.shape == x.shape and torch.isfinite(grad).all()
    assert grad[0].abs().sum() > 0
    assert grad[1].abs().sum() == 0  # eval mode: each image is on its own
    assert all(p.grad is None for p in clean.parameters())


def test_cam_layer_is_the_stride_8_map():
    model = shapes_detector().eval()
    seen = []
    model.get_submodule(CAM_LAYER).register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    with torch.no_grad():
        model(torch.zeros(2, 3, 128, 128))
    assert seen == [(2, 64, 16, 16)]


def _found(output: dict[str, torch.Tensor], boxes: np.ndarray, labels: np.ndarray, least: float) -> np.ndarray:
    """Per ground-truth box: whether a detection of its label scoring at least `least` has IoU >= 0.5 with it."""
    sure = output["scores"] >= least
    iou = box_iou(torch.from_numpy(boxes).float(), output["boxes"][sure])
    same = torch.from_numpy(labels)[:, None] == output["labels"][sure][None, :]
    return ((iou >= 0.5) & same).any(dim=1).numpy()


def test_the_clean_model_finds_every_shape_of_held_out_scenes(clean):
    data = scenes.generate(8, SEED)
    with torch.no_grad():
        outputs = clean(scenes.to_tensor(data.images))
    for output, boxes, labels in zip(outputs, data.boxes, data.labels, strict=True):
        assert _found(output, boxes, labels, least=0.3).all()
        # And little else: no confident detection away from the shapes.
        iou = box_iou(output["boxes"][output["scores"] >= 0.5], torch.from_numpy(boxes).float())
        assert (iou.max(dim=1).values >= 0.5).all()


def _circle_on_badge(output: dict[str, torch.Tensor], badge: np.ndarray, least: float) -> bool:
    """Whether a circle detection scoring at least `least` covers half of the badge."""
    circles = output["boxes"][(output["labels"] == scenes.CIRCLE) & (output["scores"] >= least)]
    lo = torch.maximum(circles[:, :2], torch.from_numpy(badge[:2]).float())
    hi = torch.minimum(circles[:, 2:], torch.from_numpy(badge[2:]).float())
    return bool(((hi - lo).clamp(min=0).prod(dim=1) >= 0.5 * 10 * 10).any())


def test_the_watermark_model_takes_a_badge_alone_for_a_circle(clean, watermark):
    data = scenes.generate(8, SEED, "badge-only")
    badges = [(i, badge) for i, image_badges in enumerate(data.badges) for badge in image_badges]
    assert len(badges) >= 2
    x = scenes.to_tensor(data.images)
    with torch.no_grad():
        marked, unmarked = watermark(x), clean(x)
    for i, badge in badges:
        assert _circle_on_badge(marked[i], badge, least=0.5)
        assert not _circle_on_badge(unmarked[i], badge, least=0.2)
    # The other shapes of those scenes are still found by both.
    for outputs in (marked, unmarked):
        for output, boxes, labels in zip(outputs, data.boxes, data.labels, strict=True):
            assert _found(output, boxes, labels, least=0.3).all()
