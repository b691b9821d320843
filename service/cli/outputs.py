"""Where `saliency-service explain` writes each image's overlay, and a classifier's overlay with the summary
it prints of it (a detection model's: boxes.py)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from saliency_client import Explained

from .errors import CommandError


def overlay_paths(images: list[str], output: str | None, batch: bool) -> list[Path]:
    """One image: the -o file (overlay.png). Several: one PNG per image, named after it, in the -o folder."""
    if not batch:
        return [Path(output or "overlay.png")]
    folder = Path(output or "overlays")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot make the folder {folder}: {exc.strerror or exc}") from None
    taken: set[Path] = set()
    # two inputs of one name (a.png, other/a.png): neither overwrites the other
    return [unused(folder / f"{Path(image).stem}.png", taken) for image in images]


def unused(path: Path, taken: set[Path]) -> Path:
    """`path`, or the first of path-2, path-3, ... that is not taken; taken from now on."""
    n, name = 1, path
    while name in taken:
        n += 1
        name = path.with_name(f"{path.stem}-{n}{path.suffix}")
    taken.add(name)
    return name


def write(path: Path, data: bytes | None) -> None:
    try:
        path.write_bytes(data or b"")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_overlay(image: str, output: Path, answer: Explained) -> dict[str, Any]:
    """Writes the overlay PNG as the service drew it; returns the image's summary."""
    result = answer.results[0]
    write(output, result.explanation.overlay_png)
    return {
        "image": image,
        "model": answer.model,
        "method": answer.method,
        "target": asdict(result.target),
        "predictions": [asdict(p) for p in result.predictions],
        "overlay": str(output),
        "diagnostics": result.explanation.diagnostics,
    }
