"""A detector's maps against independent computations: Grad-CAM and Eigen-CAM of a torchvision Faster R-CNN
against pytorch-grad-cam's with `FasterRCNNBoxScoreTarget` (its detector recipe), and D-RISE against the
paper's definition summed one mask at a time, each box's own."""

from __future__ import annotations

import copy

import pytest
import torch
from detectors import SIZE, picture, wrapped
from torch import Tensor

from service import engine
from service.explainers import ExplainContext
from service.explainers.detectors import box_plan
from service.explainers.drise import DRiseParams
from service.explainers.postprocess import normalize
from service.explainers.rise import rise_masks
from service.models.detection import affinity, detection_layers

grad_cam = pytest.importorskip("pytorch_grad_cam")
model_targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")


@pytest.fixture(scope="module")
def setup():
    """The detector, its wrapper, an input, the CAM layers, and the top two detections as target boxes."""
    model, detector = wrapped()
    x = torch.cat([picture(0), picture(1)])
    with torch.no_grad():  # one image a pass, as pytorch-grad-cam runs them: the same boxes to the last bit
        found = torch.cat([detector(x[i : i + 1]) for i in range(len(x))])
    boxes = torch.cat([found[:, :2, :4], found[:, :2, 5:6]], dim=2)  # (2 images, 2 boxes, 5)
    assert (found[:, :2, 4] > 0).all()
    table = detection_layers(detector, x[:1])
    ctx = ExplainContext(layer=table.default, layouts=table.layouts, refused_layers=table.refused)
    return model, detector, x, boxes, ctx


def ours(registry, method: str, setup, chunk_size: int = 7, **params) -> Tensor:
    _, detector, x, boxes, ctx = setup
    explainer, parsed = registry.parse({"name": method, **params}, "detection")
    plan = box_plan(explainer, detector, x, boxes, parsed, ctx)
    (result,) = engine.run(detector, [plan], "affinity", chunk_size=chunk_size)
    return result.attributions  # (N, B, ...)


def reference(name: str, setup, image: int, slot: int) -> Tensor:
    model, _, x, boxes, ctx = setup
    model = copy.deepcopy(model)
    cam = getattr(grad_cam, name)(model=model, target_layers=[model.get_submodule(ctx.layer)])
    box = boxes[image, slot]
    target = model_targets.FasterRCNNBoxScoreTarget([int(box[4])], [box[:4].numpy()])
    try:
        expected = cam(input_tensor=x[image : image + 1], targets=[target])
    finally:
        cam.activations_and_grads.release()
    return torch.from_numpy(expected[0])


@pytest.mark.parametrize(("method", "name"), [("gradcam", "GradCAM"), ("eigencam", "EigenCAM")])
def test_faster_rcnn_cams_are_pytorch_grad_cams_box_score_maps(registry, setup, method, name):
    """At a detection's own box our affinity (IoU x score, IoU not differentiated) and
    FasterRCNNBoxScoreTarget's IoU + score have the same gradient, the score's: pytorch-grad-cam's IoU is 1
    there and its gradient 0 when its pass reproduces the box bit for bit (torch splits a tie of min/max in
    two), as its one-image passes do. Ours does not depend on that: rows batched 7 a pass give the same maps."""
    maps = ours(registry, method, setup)
    shown, seen = 0, []
    for image in range(2):
        for slot in range(2):
            # pytorch-grad-cam scales the 4x4 map to [0, 1] and then resizes it; we resize and then scale.
            # Bilinear resizing is affine, so scaling both after resizing compares the same maps.
            got = normalize(maps[image, slot][None].float(), "minmax")
            expected = normalize(reference(name, setup, image, slot)[None].float(), "minmax")
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
            shown += bool(expected.max() > 0)  # a random detector's Grad-CAM can be all negative: 0 after ReLU
            seen.append(got)
    assert shown >= 2
    if method == "gradcam":  # each box its own map
        assert max((a - b).abs().max() for a in seen for b in seen) > 0.1


def test_drise_is_the_papers_sum_over_masks_one_at_a_time(registry, setup):
    _, detector, x, boxes, _ = setup
    params = DRiseParams(masks=5, cell=16, seed=3)
    maps = ours(registry, "drise", setup, chunk_size=3, masks=5, cell=16, seed=3)  # passes mix two images' masks
    assert maps.shape == (2, 2, 3, *SIZE)
    expected = torch.zeros((2, 2, *SIZE))
    with torch.no_grad():
        for image in range(2):
            for i in range(params.masks):
                mask = rise_masks(i, i + 1, *SIZE, params, x.device)[0]  # (1, H, W)
                detections = detector((mask * x[image])[None])  # black is 0: the masked image is M x
                weights = affinity(detections, boxes[image][None])[0]  # (B,): each box's best match
                expected[image] += weights[:, None, None] * mask[0]
    expected /= params.masks * params.p
    torch.testing.assert_close(maps[:, :, 0], expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(maps[:, :, 0], maps[:, :, 2])  # one map for every channel, as RISE's
    assert expected.amax(dim=(2, 3)).min() > 0
