"""Object detectors as the engine's models: torchvision's output contract packed into one tensor per pass.

The engine runs a pass as `module(x)` and scores each row from what comes back (engine/plan.py). A detector
returns a list of dicts per image (`boxes` x0, y0, x1, y1 in input pixels, `labels`, `scores`: torchvision's
contract, which a `python:` factory's model follows too), so `Detector` wraps it and returns (N, D, 6): per
image its first `CANDIDATES` detections by score as [x0, y0, x1, y1, score, label], padded with zero rows
(score 0 matches nothing). Every detection the model returns is kept, not only those over `min_score`: a
masked image's detections score lower, and D-RISE weighs a mask by how well any of them still matches.

The wrapper registers the detector's children as its own, so layer names are the detector's
(`backbone.body.layer4`, as pytorch-grad-cam's examples write them) and its state_dict is the detector's.

A row's target is a box [x0, y0, x1, y1, label] in input pixels (label -1: no box, score 0). Its score is
D-RISE's affinity (Petsiuk et al. 2021) to the detection that matches it best:
    max over detections d of IoU(target, d) x objectness(d) x cos(class vector of the target, of d).
torchvision's detectors give one class and its probability per box, so a detection's class vector is that
probability on its class and 0 elsewhere: the cosine with the target's one-hot class is 1 for the same label
and 0 otherwise, and the objectness is the box's score. The same rule scores every method's rows; at a
detection's own box it is the score of that detection. Gradients flow through the scores only (the IoU is a
weight): a gradient map shows the pixels that raise the matched detections' scores, whatever the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_iou

from .layers import LayerTable
from .layouts import Layout

CANDIDATES = 100  # detections kept per image and pass (torchvision's detections_per_img default)
# torchvision detectors whose transform resizes to min_size/max_size: set to the input size so the service's
# letterboxed input is the detector's working size, with no second resize inside the model.
RESIZED_BY_TRANSFORM = ("fasterrcnn", "maskrcnn", "keypointrcnn", "retinanet", "fcos")
NO_BACKBONE_WEIGHTS = {"weights_backbone": None}  # torchvision would download ImageNet backbone weights


class Detector(nn.Module):
    def __init__(self, detector: nn.Module, candidates: int = CANDIDATES):
        super().__init__()
        for name, child in detector.named_children():
            self.add_module(name, child)
        self._detector: nn.Module
        object.__setattr__(self, "_detector", detector)  # called, not registered: its children are ours
        self.candidates = candidates

    def train(self, mode: bool = True) -> Detector:
        super().train(mode)
        self._detector.training = mode  # torchvision's detectors switch outputs on their own flag
        return self

    def forward(self, x: Tensor) -> Tensor:
        found = self._detector(list(x))
        if not isinstance(found, list) or len(found) != len(x):
            raise TypeError("a detection model must return one dict of boxes, labels and scores per image")
        return torch.stack([pack(d, self.candidates, x) for d in found])


def pack(found: dict[str, Tensor], candidates: int, like: Tensor) -> Tensor:
    """One image's detections as (candidates, 6), best first, zero rows after the last."""
    boxes, scores, labels = found["boxes"], found["scores"], found["labels"]
    order = scores.argsort(descending=True, stable=True)[:candidates]  # ties keep the detector's order
    rows = torch.cat([boxes[order], scores[order, None], labels[order, None].to(boxes.dtype)], dim=1)
    out = like.new_zeros((candidates, 6))
    return torch.cat([rows.to(like.dtype), out[len(rows) :]])


def affinity(detections: Tensor, targets: Tensor) -> Tensor:
    """D-RISE's affinity of each row's target box(es) to its best detection: detections (n, D, 6), targets
    (n, 5) -> (n,), or (n, B, 5) -> (n, B)."""
    single = targets.dim() == 2
    boxes = targets[:, None] if single else targets
    out = torch.stack([image_affinity(d, t) for d, t in zip(detections, boxes, strict=True)])
    return out[:, 0] if single else out


def image_affinity(detections: Tensor, targets: Tensor) -> Tensor:
    """(D, 6) detections, (B, 5) targets -> (B,)."""
    # IoU weighs the match and is not differentiated: its min/max have a kink where the detection's box
    # equals the target (a detection's own box), so its gradient there would depend on the last bit of
    # the box, which another batch size changes. Gradients are the matched detections' scores'.
    boxes = detections[:, :4].detach()
    iou = box_iou(targets[:, :4], boxes)
    # A zero-area box's IoU is 0/0: with the very same box it is the detection's own (1), else no overlap.
    identical = (targets[:, None, :4] == boxes[None]).all(dim=2)
    iou = torch.where(iou.isnan(), identical.to(iou.dtype), iou)
    same = (targets[:, None, 4] == detections[None, :, 5]) & (targets[:, None, 4] >= 0)
    values = iou * detections[None, :, 4] * same
    return values.max(dim=1).values if values.shape[1] else values.new_zeros(len(targets))


def no_box(n: int, device: torch.device, boxes: int | None = None) -> Tensor:
    """Targets that match nothing: the rows of a prediction pass."""
    shape = (n, 5) if boxes is None else (n, boxes, 5)
    out = torch.zeros(shape, device=device)
    out[..., 4] = -1
    return out


def builder_kwargs(name: str, input_size: tuple[int, int]) -> dict[str, object]:
    """What a torchvision detector is built with here: no downloaded backbone, and (where its transform
    resizes) the input size as its working size."""
    kwargs: dict[str, object] = dict(NO_BACKBONE_WEIGHTS)
    if name.startswith(RESIZED_BY_TRANSFORM):
        kwargs.update(min_size=min(input_size), max_size=max(input_size))
    return kwargs


def detection_layers(model: Detector, example: Tensor) -> LayerTable:
    """The modules that output (N, C, h, w) feature maps of the images (not of region proposals: their first
    dimension is the batch's), as CAM layers. The default is the last of the trunk (`backbone.body`), the
    features every head reads through the FPN, as pytorch-grad-cam's detector examples take the backbone;
    else the backbone's module that outputs the head's first (finest) level, which SSD computes each later
    level from (its backbone's last module feeds only the coarsest level: every other box's Grad-CAM map
    would be zero); else the backbone's last, else the model's. Modules that output one map per FPN level
    are refused, saying so. One forward of `example` (also the warm-up)."""
    table = LayerTable()
    finest: list[tuple[int, ...]] = []  # (C, h, w) of the first level a single-stage head reads

    def read_levels(_module: nn.Module, args: tuple[object, ...]) -> None:
        levels = args[0] if args else None
        if isinstance(levels, (list, tuple)) and levels and isinstance(levels[0], Tensor) and levels[0].dim() == 4:
            finest.append(tuple(levels[0].shape[1:]))

    def hook(name: str):
        def record(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, Tensor) and output.dim() == 4 and output.shape[2:].numel() > 1:
                if output.shape[0] == len(example):
                    table.layouts[name] = Layout("nchw", output.shape[1], (output.shape[2], output.shape[3]))
            elif isinstance(output, dict) and output and all(isinstance(v, Tensor) for v in output.values()):
                table.refused[name] = (
                    f"it outputs {len(output)} feature maps (one per level, keys {', '.join(map(str, output))}), "
                    "not one (N, C, H, W) tensor: name one level's layer"
                )

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    head = getattr(model, "head", None)  # torchvision's single-stage detectors call it with their levels
    if isinstance(head, nn.Module):
        handles.append(head.register_forward_pre_hook(read_levels))
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    trunk = [n for n in table.layouts if n.startswith("backbone.body.")]
    backbone = [n for n in table.layouts if n.startswith("backbone.")]
    level = [n for n in backbone if finest and table.layouts[n].shape == finest[0]]
    names = trunk or level or backbone or list(table.layouts)
    table.default = names[-1] if names else None
    return table


class SingleStage(nn.Module):
    """torchvision's detection contract for a single-stage (YOLO-style) model whose forward returns one
    (N, A, 4 + 1 + C) tensor per batch: per anchor its box (x0, y0, x1, y1 in input pixels), objectness and
    class probabilities. A detection's score is objectness x its best class probability and its label that
    class (+ `label_offset`, 1 where index 0 is a background label); per image the `keep` best after
    class-wise NMS at `iou` above `min_score`. Differentiable in the scores, as the gradient methods need."""

    def __init__(self, model: nn.Module, iou: float = 0.5, min_score: float = 0.01, keep: int = CANDIDATES,
                 label_offset: int = 1):  # fmt: skip
        super().__init__()
        self.model, self.iou, self.min_score, self.keep, self.label_offset = model, iou, min_score, keep, label_offset

    def forward(self, images: list[Tensor] | Tensor) -> list[dict[str, Tensor]]:
        batch = torch.stack(list(images)) if isinstance(images, list) else images
        raw = self.model(batch)
        out = []
        for rows in raw:
            probs, classes = rows[:, 5:].max(dim=1)
            scores = rows[:, 4] * probs
            boxes = rows[:, :4]
            chosen = (scores >= self.min_score).nonzero()[:, 0]
            kept = batched_nms(boxes[chosen].detach(), scores[chosen].detach(), classes[chosen], self.iou)
            kept = chosen[kept[: self.keep]]
            out.append({"boxes": boxes[kept], "scores": scores[kept], "labels": classes[kept] + self.label_offset})
        return out
