"""A method's plan for a detector: one map per target box (models/detection.py scores a row by its box).

Rows of a classifier's method are images with a class each; a detector's are images with a box each. A method
that scores a row by its target (gradient, integrated gradients, Grad-CAM) runs its own plan on one row per
(image, box), so each box's map is exactly that method's map of the box's score; a method without a target
(Eigen-CAM) runs once per image and every box shares its map; a method that scores all of an image's boxes
in one row (`boxes_per_row`: D-RISE) gets the images and their box tables.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..engine.plan import Plan
from ..models.detection import no_box
from .base import ExplainContext, Explainer, Explanation, Params


def box_plan(
    explainer: Explainer, model: nn.Module, x: Tensor, boxes: Tensor, params: Params, ctx: ExplainContext
) -> Plan:
    """x (N, C, H, W), boxes (N, B, 5) [x0, y0, x1, y1, label] in input pixels (label -1: no box) ->
    attributions (N, B, ...) and diagnostics (N, B); a no-box slot's map is zeros."""
    n, b = boxes.shape[:2]
    map_shape = x.shape[1:] if explainer.capabilities.output == "pixel" else x.shape[2:]
    if b == 0:  # no box to explain in any image: no pass
        return Explanation(x.new_zeros((n, 0, *map_shape)), x.new_zeros((n, 0)), boxes)
    if explainer.capabilities.boxes_per_row:
        return (yield from explainer.plan(model, x, boxes, params, ctx))
    if not explainer.capabilities.uses_target:
        result = yield from explainer.plan(model, x, no_box(n, x.device), params, ctx)
        assert isinstance(result, Explanation)
        maps = result.attributions[:, None].expand(n, b, *result.attributions.shape[1:])
        diagnostics = {k: v[:, None].expand(n, b) for k, v in result.diagnostics.items()}
        return Explanation(maps, result.logits, boxes, diagnostics)
    images, slots = (boxes[..., 4] >= 0).nonzero(as_tuple=True)
    if len(images) == 0:
        return Explanation(x.new_zeros((n, b, *map_shape)), x.new_zeros((n, 0)), boxes)
    result = yield from explainer.plan(model, x[images], boxes[images, slots], params, ctx)
    assert isinstance(result, Explanation)
    maps = result.attributions.new_zeros((n, b, *result.attributions.shape[1:]))
    maps[images, slots] = result.attributions
    diagnostics = {}
    for key, value in result.diagnostics.items():
        diagnostics[key] = value.new_zeros((n, b))
        diagnostics[key][images, slots] = value
    return Explanation(maps, result.logits, boxes, diagnostics)
