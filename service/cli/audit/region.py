"""`--region x0,y0,x1,y1`: a box in the model's input pixels (x to the right, y down, half-open: x0 <= x < x1),
and how much of a saliency map's mass lies inside it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    x0: int
    y0: int
    x1: int
    y1: int

    def __str__(self) -> str:
        return f"{self.x0},{self.y0},{self.x1},{self.y1}"

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def within(self, width: int, height: int) -> Region:
        """The region, checked against the model's input size; ValueError says what is wrong in one line."""
        if not (0 <= self.x0 < self.x1 <= width and 0 <= self.y0 < self.y1 <= height):
            raise ValueError(
                f"--region {self}: not a non-empty box inside the model's {width}x{height} input "
                f"(0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height}; half-open, in input pixels)"
            )
        return self

    def share(self, width: int, height: int) -> float:
        """The region's share of the input's area: the fraction a uniform map puts inside it."""
        return self.area / (width * height)


def parse_region(text: str) -> Region:
    """ "x0,y0,x1,y1" (integers) -> Region; ValueError says what is wrong in one line."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(p.isascii() and p.lstrip("-").isdigit() and len(p) <= 9 for p in parts):
        raise ValueError(f"--region {text!r}: expected four integers x0,y0,x1,y1, such as 82,82,92,92")
    return Region(*(int(p) for p in parts))


def fraction(saliency: np.ndarray, region: Region) -> float | None:
    """The share of the map's mass inside the region; None for a map with no mass (all zero)."""
    total = float(saliency.sum(dtype=np.float64))
    if not total > 0:
        return None
    inside = float(saliency[region.y0 : region.y1, region.x0 : region.x1].sum(dtype=np.float64))
    return inside / total


def peak_inside(saliency: np.ndarray, region: Region) -> bool:
    """Whether the map's largest value (the first, in row order, on ties) lies inside the region."""
    y, x = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    return bool(region.x0 <= x < region.x1 and region.y0 <= y < region.y1)
