"""The detector wrapper: torchvision's outputs packed per pass, D-RISE's affinity on hand-set boxes, the
letterbox geometry that maps boxes back to the picture, and the CAM layers a detector offers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from detectors import SIZE, picture, wrapped
from PIL import Image
from torch import Tensor, nn
from torchvision.ops import box_iou

from service.codecs.image.transforms import Geometry, letterbox
from service.models import ModelSpec
from service.models.detection import CANDIDATES, Detector, SingleStage, affinity, detection_layers, no_box, pack


def test_affinity_is_iou_times_score_of_the_best_same_class_detection():
    detections = torch.tensor([[[0.0, 0, 10, 10, 0.9, 1], [0, 0, 10, 20, 0.8, 2], [5, 0, 15, 10, 0.6, 1], [0] * 6]])
    targets = torch.tensor([[[0.0, 0, 10, 10, 1], [0, 0, 10, 10, 2], [0, 0, 10, 10, 3], [0, 0, 10, 10, -1]]])
    # class 1: itself 1 x 0.9 beats the shifted box's 1/3 x 0.6; class 2: IoU 1/2 x 0.8; class 3 and no box: 0
    expected = torch.tensor([[0.9, 0.4, 0.0, 0.0]])
    torch.testing.assert_close(affinity(detections, targets), expected)
    torch.testing.assert_close(affinity(detections, targets[:, 1]), expected[:, 1])  # one box per row
    assert affinity(detections, no_box(1, torch.device("cpu"))).tolist() == [0.0]


def test_pack_keeps_the_best_first_and_pads_with_rows_that_match_nothing():
    found = {"boxes": torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]]), "scores": torch.tensor([0.2, 0.7]),
             "labels": torch.tensor([3, 1])}  # fmt: skip
    packed = pack(found, 4, torch.zeros(1))
    expected = torch.tensor([[1, 1, 5, 5, 0.7, 1], [0, 0, 4, 4, 0.2, 3], [0] * 6, [0] * 6])
    torch.testing.assert_close(packed, expected, rtol=0, atol=0)
    many = {"boxes": torch.rand(9, 4), "scores": torch.rand(9), "labels": torch.ones(9, dtype=torch.long)}
    assert pack(many, 4, torch.zeros(1))[:, 4].tolist() == many["scores"].sort(descending=True).values[:4].tolist()


def test_the_wrapper_gives_the_detectors_own_detections_and_is_differentiable():
    model, detector = wrapped()
    x = picture()
    with torch.no_grad():
        (direct,) = model(list(x))
        packed = detector(x)
    k = len(direct["scores"])
    assert packed.shape == (1, CANDIDATES, 6) and 0 < k <= CANDIDATES
    torch.testing.assert_close(packed[0, :k, :4], direct["boxes"], rtol=0, atol=0)
    assert packed[0, :k, 5].tolist() == direct["labels"].float().tolist() and not packed[0, k:].any()
    assert {n for n, _ in detector.named_children()} == {n for n, _ in model.named_children()}
    assert detector.state_dict().keys() == model.state_dict().keys()
    xr = x.clone().requires_grad_(True)
    score = affinity(detector(xr), packed[:, 0, [0, 1, 2, 3, 5]])  # the top detection's own box
    torch.testing.assert_close(score.detach(), packed[:, 0, 4])
    (grad,) = torch.autograd.grad(score.sum(), xr)
    assert grad.abs().sum() > 0


def test_a_detectors_cam_layers_are_its_backbones_maps_and_the_fpn_dict_is_refused():
    _, detector = wrapped()
    table = detection_layers(detector, torch.zeros((1, 3, *SIZE)))
    assert table.default == "backbone.body.16" and table.layouts["backbone.body.16"].shape == (960, 4, 4)
    assert "rpn.head.conv" in table.layouts  # the RPN reads image maps too
    assert not any(name.startswith("roi_heads") for name in table.layouts)  # maps of proposals, not of images
    assert "backbone.fpn.layer_blocks.0" in table.layouts  # one FPN level's map
    assert "one per level" in table.refused["backbone"] and "backbone.fpn" in table.refused


@pytest.mark.parametrize(("width", "height"), [(200, 100), (50, 150), (128, 128)])
def test_a_letterbox_keeps_the_whole_picture_and_boxes_map_back_to_it(width, height):
    image = Image.new("RGB", (width, height), (255, 255, 255))
    canvas, box = letterbox(image, SIZE, Image.Resampling.BILINEAR)
    where = Geometry(width, height, box)
    seen = torch.from_numpy(np.asarray(canvas)[..., 0] > 0)  # the picture's pixels are white
    rows, cols = seen.any(dim=1).nonzero()[:, 0], seen.any(dim=0).nonzero()[:, 0]
    inside = torch.tensor([[cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]], dtype=torch.float64)
    whole = torch.tensor([[0.0, 0, width, height]], dtype=torch.float64)
    torch.testing.assert_close(where.to_original(inside, SIZE), whole, rtol=0, atol=1e-4)
    corner = torch.tensor([[10.0, 20, 30, 40]], dtype=torch.float64)
    torch.testing.assert_close(where.to_original(where.to_input(corner, SIZE), SIZE), corner)


class TinyYolo(nn.Module):
    """A single-stage model's shape: a conv backbone, then per anchor of a 4x4 grid a box, objectness and 4
    class probabilities, as one (N, 16, 9) tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.head = nn.Conv2d(8, 4 + 1 + 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.backbone(x)).flatten(2).transpose(1, 2)  # (N, 16, 9)
        cells = torch.arange(16, dtype=x.dtype)
        x0, y0 = (cells % 4) * 32, (cells // 4) * 32
        boxes = torch.stack([x0, y0, x0 + 32, y0 + 32], dim=1) + 8 * out[..., :4].tanh()
        return torch.cat([boxes, out[..., 4:5].sigmoid(), out[..., 5:].softmax(dim=2)], dim=2)


def test_the_single_stage_adapter_is_a_decode_and_nms_and_serves_as_a_detector():
    torch.manual_seed(0)
    raw = TinyYolo().eval()
    adapter = SingleStage(raw, iou=0.3, min_score=0.05, keep=5)
    x = picture(2)
    (found,) = adapter(list(x))
    rows = raw(x)[0].detach()
    probs, classes = rows[:, 5:].max(dim=1)
    scores = rows[:, 4] * probs
    order = [int(i) for i in scores.argsort(descending=True) if scores[i] >= 0.05]
    kept: list[int] = []
    for i in order:  # greedy NMS within each class, by hand
        if all(classes[j] != classes[i] or box_iou(rows[None, i, :4], rows[None, j, :4]) <= 0.3 for j in kept):
            kept.append(i)
    kept = kept[:5]
    torch.testing.assert_close(found["boxes"].detach(), rows[kept, :4])
    assert found["labels"].tolist() == (classes[kept] + 1).tolist()
    detector = Detector(adapter).eval()
    table = detection_layers(detector, torch.zeros((1, 3, *SIZE)))
    assert table.default == "model.head" and "model.backbone.0" in table.layouts
    xr = x.clone().requires_grad_(True)
    packed = detector(xr)
    (grad,) = torch.autograd.grad(packed[0, 0, 4], xr)
    assert grad.abs().sum() > 0  # the score is differentiable in the input


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"max_detections": 10**9}, "less than or equal to 100"),
        ({"max_detections": 0}, "greater than or equal to 1"),
        ({"min_score": float("nan")}, "min_score"),
        ({"resize": "shorter_side"}, "a detector sees the whole image"),
        ({"architecture": "timm:resnet18"}, "a detection model's architecture"),
    ],
)
def test_a_detection_spec_refuses_what_cannot_be_served(fields, says):
    entry = {"name": "d", "kind": "detection", "architecture": "torchvision:fcos_resnet50_fpn", "num_classes": 3}
    with pytest.raises(ValueError, match=says):
        ModelSpec.model_validate({**entry, **fields})
    spec = ModelSpec.model_validate(entry)
    assert (spec.resize, spec.mean, spec.std, spec.min_score, spec.max_detections) == (
        "letterbox", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0.5, 20,
    )  # fmt: skip


def test_a_zero_area_detections_own_box_scores_its_score():
    """FCOS can predict a box of zero width; its IoU with itself is 0/0, taken as 1 (its own box), and with
    any other box as 0."""
    detections = torch.tensor([[[5.0, 5.0, 5.0, 9.0, 0.7, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]])
    targets = torch.tensor([[[5.0, 5.0, 5.0, 9.0, 2.0], [4.0, 4.0, 6.0, 9.0, 2.0]]])
    assert affinity(detections, targets).tolist() == [[pytest.approx(0.7), 0.0]]
