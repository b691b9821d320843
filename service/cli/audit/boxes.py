"""The audit of a detection model: every box of every image explained, then per detected class how many boxes,
the mean map in box coordinates (each box's map cropped to its box and scaled to BOX_SIDE, so a shortcut at
the same place in every box shows, like the demo's badge at the top-left corner), where its peak is, and how
much of each map's mass lies inside its own box. One self-contained HTML page, as the classifiers' audit.

Maps come at the photo's size (output size "original"), min-max normalized per map, so their boxes and the
box coordinates agree and maps of different boxes can be averaged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from html import escape

import numpy as np
from PIL import Image
from saliency_client import DetectionsResult

from . import pictures
from .inputs import Item
from .report import CSP, STYLE, percent

BOX_SIDE = 32  # the mean box map's side, in cells
EXAMPLES = 4


@dataclass
class BoxGroup:
    count: int = 0
    box_map_sum: np.ndarray = field(default_factory=lambda: np.zeros((BOX_SIDE, BOX_SIDE)))
    inside: list[float] = field(default_factory=list)  # per box: the share of its map's mass inside it
    examples: list[tuple[str, bytes]] = field(default_factory=list)  # (file, the image's overlay of every box)

    @property
    def mean_box_map(self) -> np.ndarray:
        return self.box_map_sum / max(1, self.count)

    def peak(self) -> tuple[float, float]:
        """(u, v) in [0, 1] box coordinates (x right, y down) of the mean box map's peak."""
        v, u = np.unravel_index(int(np.argmax(self.mean_box_map)), self.mean_box_map.shape)
        return ((u + 0.5) / BOX_SIDE, (v + 0.5) / BOX_SIDE)


def box_map(saliency: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, float]:
    """The map's part inside the box, scaled to BOX_SIDE x BOX_SIDE and to [0, 1]; and the share of the map's
    mass (its values less its minimum) inside the box."""
    mass = saliency.astype(np.float64) - float(saliency.min())
    height, width = mass.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, max(x0 + 1, round(box[2]))), min(height, max(y0 + 1, round(box[3])))
    crop = mass[y0:y1, x0:x1]
    total = float(mass.sum())
    inside = float(crop.sum()) / total if total > 0 else 0.0
    scaled = np.asarray(
        Image.fromarray(crop.astype(np.float32)).resize((BOX_SIDE, BOX_SIDE), Image.Resampling.BILINEAR)
    )
    top = float(scaled.max())
    return (scaled / top if top > 0 else scaled), inside


@dataclass
class BoxAudit:
    """Every explained image goes through add(); the report and the summary read the groups."""

    groups: dict[str, BoxGroup] = field(default_factory=dict)
    images: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, item: Item, result: DetectionsResult) -> None:
        self.images += 1
        for detection in result.detections:
            saliency = detection.explanation.saliency
            if saliency is None or saliency.ndim != 2:
                continue
            group = self.groups.setdefault(detection.label or str(detection.index), BoxGroup())
            scaled, inside = box_map(saliency, detection.box)
            group.count += 1
            group.box_map_sum += scaled
            group.inside.append(inside)
            seen = {name for name, _ in group.examples}
            if len(group.examples) < EXAMPLES and result.overlay_png and item.name not in seen:
                group.examples.append((item.name, result.overlay_png))

    def skip(self, item: Item, why: str) -> None:
        self.skipped.append((item.name, why))

    def summary(self) -> dict:
        return {
            "explained": self.images,
            "skipped": len(self.skipped),
            "boxes": sum(g.count for g in self.groups.values()),
            "per_class": {
                label: {
                    "boxes": g.count,
                    "inside_box": round(float(np.mean(g.inside)), 4) if g.inside else None,
                    "mean_box_map_peak": [round(c, 3) for c in g.peak()],
                }
                for label, g in sorted(self.groups.items())
            },
        }


def page(audit: BoxAudit, model: str, path: str, method: dict | None, where: str, colormap: str) -> str:
    rows, sections = [], []
    for label, group in sorted(audit.groups.items()):
        u, v = group.peak()
        share = float(np.mean(group.inside)) if group.inside else None
        rows.append(
            f"<tr><td>{escape(label)}</td><td class=n>{group.count}</td><td class=n>{percent(share, 1)}</td>"
            f"<td class=n>u={u:.2f}, v={v:.2f}</td></tr>"
        )
        mean = pictures.mean_map(group.mean_box_map.astype(np.float32), colormap, None)
        figures = [
            f'<figure class="mean"><img src="{mean}" alt="mean box map"><figcaption>mean box map of '
            f"{group.count} boxes, peak at u={u:.2f}, v={v:.2f}</figcaption></figure>"
        ]
        for name, png in group.examples:
            uri = pictures.data_uri(Image.open(io.BytesIO(png)))  # scaled down, as every picture of the report
            figures.append(f'<figure><img src="{uri}" alt=""><figcaption>{escape(name)}</figcaption></figure>')
        sections.append(f'<h3>{escape(label)}</h3><div class="row">{"".join(figures)}</div>')
    skipped = "".join(f"<li><code>{escape(n)}</code>: {escape(why)}</li>" for n, why in audit.skipped)
    title = f"Saliency audit: {model} on {path}"
    body = (
        f"<h1>{escape(title)}</h1><p class=meta>{audit.images} images explained {escape(where)} with "
        f"<code>{escape(str(method))}</code>; every box of each; maps at the photo's size, min-max scaled.</p>"
        '<h2 id="classes">Per detected class</h2><p>The mean map in box coordinates (each box\'s map cropped to '
        "its box and scaled to a square: u right, v down, 0 to 1), and the share of each map's mass inside its "
        "own box (a map that looks elsewhere puts it outside).</p>"
        "<table><tr><th>class</th><th>boxes</th><th>mass inside the box</th><th>mean box map peak</th></tr>"
        + "".join(rows)
        + "</table>"
        + "".join(sections)
        + (f'<h2 id="skipped">Skipped inputs</h2><ul>{skipped}</ul>' if skipped else "")
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
