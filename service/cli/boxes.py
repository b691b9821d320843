"""`saliency-service explain` on a detection model: its --target (the detections, or one JSON list of boxes
explained in every image), and what it writes per image: the overlay of every box at the image's path and
each box's beside it, named after it and the box's index in the summary's `detections` (`scene.png`,
`scene-box0.png`, `scene-box1.png`, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from saliency_client import DetectionsExplained

from .errors import CommandError
from .outputs import unused, write


def box_target(value: str, model: str) -> str | list[Any]:
    """A detection model's --target: "detections" ("predicted", the default, means the same), or one JSON list of
    boxes explained in every image. The service checks each box."""
    if value in ("predicted", "detections"):
        return "detections"
    if not value.lstrip().startswith("["):
        raise CommandError(
            f"--target {value!r}: {model!r} is a detection model: its target is detections (the default) or "
            'boxes as JSON, [{"box": [x0, y0, x1, y1], "label": ...}]'
        )
    try:
        boxes = json.loads(value, parse_constant=not_json)  # NaN and Infinity could not be sent to a server
    except ValueError as exc:
        raise CommandError(f"--target: not valid JSON: {exc}") from None
    if any(isinstance(item, list) for item in boxes):
        raise CommandError("--target: one list of boxes, explained in every image (not a list per image)")
    return boxes


def not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def write_boxes(image: str, output: Path, answer: DetectionsExplained, target: Any, taken: set[Path]) -> dict[str, Any]:
    """Writes the overlay of every box at `output` and each box's beside it (`taken`: the paths the command
    writes, which no box's may overwrite); returns the image's summary, its detections (box, label, score)
    with their overlays."""
    result = answer.results[0]
    write(output, result.overlay_png)
    detections = []
    for j, found in enumerate(result.detections):
        path = unused(output.with_name(f"{output.stem}-box{j}{output.suffix}"), taken)
        write(path, found.explanation.overlay_png)
        detections.append(
            {
                "box": list(found.box),
                "label": found.label,
                "index": found.index,
                "score": found.score,  # a given box's: its affinity to the image's detections
                "overlay": str(path),
                "diagnostics": found.explanation.diagnostics,
            }
        )
    return {
        "image": image,
        "model": answer.model,
        "method": answer.method,
        "target": target,
        "detections": detections,
        "overlay": str(output),
    }
