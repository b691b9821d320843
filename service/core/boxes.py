"""A detector's targets: "detections", or the client's boxes, checked and put in the model's input pixels.

Every check of a box lives here and answers a 422 naming its field: a box is four finite numbers with
x0 < x1 and y0 < y1 that overlap its image, its label one of the model's (or an index), and an image has at
most max_detections boxes, so a request of 10,000 boxes is refused before any work.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidTarget
from ..models import LoadedModel
from ..models.detection import no_box


def parse_boxes(target: Any, n: int, loaded: LoadedModel) -> list[list[tuple[list[float], int]]] | None:
    """None for "detections"; else per image its boxes (in original pixels) and class indices. A list of
    boxes applies to every image; a list of lists gives each image its own."""
    if target in ("detections", "predicted"):
        return None
    if not isinstance(target, list) or not target:
        raise InvalidTarget('a detector\'s target is "detections" or a list of {"box", "label"} objects', "target")
    per_image = target if isinstance(target[0], list) else [target] * n
    if len(per_image) != n:
        raise InvalidTarget(f"{len(per_image)} lists of boxes for {n} images", "target")
    out = []
    for i, boxes in enumerate(per_image):
        where = f"target.{i}" if isinstance(target[0], list) else "target"
        if not isinstance(boxes, list) or len(boxes) > loaded.spec.max_detections:
            raise InvalidTarget(
                f"at most {loaded.spec.max_detections} boxes per image (max_detections), as a list", where
            )
        out.append([parse_box(item, f"{where}.{j}", loaded) for j, item in enumerate(boxes)])
    return out


def parse_box(item: Any, field: str, loaded: LoadedModel) -> tuple[list[float], int]:
    if not isinstance(item, dict) or set(item) - {"box", "label"} or "box" not in item:
        raise InvalidTarget('a target box is {"box": [x0, y0, x1, y1], "label": name or index}', field)
    box = item["box"]
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int | float) for v in box):
        raise InvalidTarget("box is four numbers: x0, y0, x1, y1 in the image's pixels", f"{field}.box")
    if isinstance(box[0], bool) or not all(math.isfinite(v) for v in box) or box[0] >= box[2] or box[1] >= box[3]:
        raise InvalidTarget("box needs finite x0 < x1 and y0 < y1", f"{field}.box")
    label = item.get("label")
    labels, classes = loaded.labels, loaded.spec.num_classes
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < classes:
        return [float(v) for v in box], label
    if isinstance(label, str) and labels is not None and label in labels:
        return [float(v) for v in box], labels.index(label)
    raise InvalidTarget(f"label must be one of the model's labels or an index in [0, {classes})", f"{field}.label")


def box_table(chosen: list[list[tuple[list[float], int]]], geometry: list, loaded: LoadedModel) -> Tensor:
    """(N, B, 5) targets in input pixels; a box must overlap its image."""
    size = loaded.spec.input_size
    table = no_box(len(chosen), torch.device("cpu"), max([len(b) for b in chosen] + [0]))
    for i, (boxes, where) in enumerate(zip(chosen, geometry, strict=True)):
        for j, (box, index) in enumerate(boxes):
            x0, y0, x1, y1 = box
            if x1 <= 0 or y1 <= 0 or x0 >= where.width or y0 >= where.height:
                raise InvalidTarget(f"box {box} lies outside the {where.width}x{where.height} image", "target")
            table[i, j, :4] = where.to_input(torch.tensor([box], dtype=torch.float64), size)[0].float()
            table[i, j, 4] = index
    return table
