"""A method's plan for a detector: one map per target box (models/detection.py scores a row by its box).

Rows of a classifier's method are images with a class each; a detector's are images with a box each. A method
runs its own plan on one row per (image, box), so each box's map is exactly that method's map of the box's
score (Eigen-CAM, which has no target, gives every box of an image the same map). Every method of a request
thus asks for the same clean rows, which the engine shares between them (one pass for gradient, Grad-CAM and
Eigen-CAM together). A method that scores all of an image's boxes in one row (`boxes_per_row`: D-RISE) gets
the images and their box tables, and its own rows.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..engine.plan import Plan
from .base import ExplainContext, Explainer, Explanation, Params
from .faithfulness import EvaluateSpec, evaluated
from .postprocess import Reduce

Evaluate = tuple[EvaluateSpec, Reduce]  # the metrics, and the reduction that ranks this method's maps


def box_plan(
    explainer: Explainer,
    model: nn.Module,
    x: Tensor,
    boxes: Tensor,
    params: Params,
    ctx: ExplainContext,
    evaluate: Evaluate | None = None,
) -> Plan:
    """x (N, C, H, W), boxes (N, B, 5) [x0, y0, x1, y1, label] in input pixels (label -1: no box) ->
    attributions (N, B, ...) and diagnostics (N, B); a no-box slot's map is zeros. With `evaluate`, each box's
    deletion and insertion curves (faithfulness.py), its affinity the score: `faithfulness` values (N, B, ...)."""
    result = yield from maps_plan(explainer, model, x, boxes, params, ctx)
    if evaluate is None or not boxes.shape[1]:
        return result
    assert isinstance(result, Explanation)
    images, slots = (boxes[..., 4] >= 0).nonzero(as_tuple=True)
    per_box = Explanation(result.attributions[images, slots], result.logits, boxes[images, slots])
    spec, reduce = evaluate
    measured = yield from evaluated(finished(per_box), x[images], ctx.pixel_space, reduce, spec)
    assert isinstance(measured, Explanation)
    result.faithfulness = {metric: {k: scatter(v, images, slots, boxes.shape[:2]) for k, v in values.items()}
                           for metric, values in measured.faithfulness.items()}  # fmt: skip
    return result


def finished(result: Explanation) -> Plan:
    """A plan that needs no rows: its result is already known."""
    return result
    yield  # a generator


def scatter(values: Tensor, images: Tensor, slots: Tensor, shape: tuple[int, ...]) -> Tensor:
    out = values.new_zeros((*shape, *values.shape[1:]))
    out[images.cpu(), slots.cpu()] = values
    return out


def maps_plan(
    explainer: Explainer, model: nn.Module, x: Tensor, boxes: Tensor, params: Params, ctx: ExplainContext
) -> Plan:
    """Each box's maps: per (image, box) rows, per image rows, or the method's own boxes-per-row plan."""
    n, b = boxes.shape[:2]
    map_shape = x.shape[1:] if explainer.capabilities.output == "pixel" else x.shape[2:]
    if b == 0:  # no box to explain in any image: no pass
        return Explanation(x.new_zeros((n, 0, *map_shape)), x.new_zeros((n, 0)), boxes)
    if explainer.capabilities.boxes_per_row:
        return (yield from explainer.plan(model, x, boxes, params, ctx))
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
