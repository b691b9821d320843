"""How much a map still resembles the original: Spearman rank correlation and SSIM of absolute values.

Both as Adebayo et al. (2018) compare maps: on absolute values, since a randomized network may flip a
map's sign without changing what it points at. SSIM (scikit-image's `structural_similarity`) needs a
picture: maps are scaled to [0, 1] by their largest absolute value, and 1-D maps (texts) have none.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity


def rank_correlation(original: np.ndarray, other: np.ndarray) -> float:
    """Spearman's rho of |original| and |other|. A constant map ranks nothing: its correlation is 0 (a map
    that went blank does not resemble the original)."""
    a, b = np.abs(original).ravel().astype(np.float64), np.abs(other).ravel().astype(np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def ssim(original: np.ndarray, other: np.ndarray) -> float | None:
    """SSIM of the two maps' absolute values, each scaled to [0, 1]; None for 1-D maps (texts) and for maps
    smaller than SSIM's 7 x 7 window. A blank map resembles nothing, as for the rank correlation: 0 (SSIM
    would find a mostly dark map like an all-dark one; a randomized detector that no longer finds the box
    gives blank maps)."""
    if original.ndim != 2 or min(original.shape) < 7:
        return None
    if np.ptp(original) == 0 or np.ptp(other) == 0:
        return 0.0
    return float(structural_similarity(scaled(original), scaled(other), data_range=1.0))


def scaled(values: np.ndarray) -> np.ndarray:
    magnitude = np.abs(values).astype(np.float64)
    top = magnitude.max()
    return magnitude / top if top > 0 else magnitude


def mean_similarity(originals: list[np.ndarray], others: list[np.ndarray]) -> tuple[float, float | None]:
    """Mean over the inputs of both similarities (SSIM None when any input has none)."""
    rho = [rank_correlation(a, b) for a, b in zip(originals, others, strict=True)]
    structural = [ssim(a, b) for a, b in zip(originals, others, strict=True)]
    known = [s for s in structural if s is not None]
    return float(np.mean(rho)), (float(np.mean(known)) if len(known) == len(structural) else None)
