"""pass / fail: a method passes when its maps stop resembling the original once the model is randomized.

Read from the whole cascade, not its last step: once every block is re-initialized nearly every method's
maps are far from the original, and what sets the failing methods apart (Adebayo et al. 2018) is that their
maps stay alike while the top blocks are randomized. So the similarity is the mean over the steps (the area
under the curve; the data randomization test has one step). Thresholds calibrated on the demo
(`python -m tools.demo.trust`; README "Sanity checks").
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np

SPEARMAN_BELOW = 0.5
SSIM_BELOW = 0.33


class Threshold(TypedDict):
    spearman_below: float
    ssim_below: float | None
    rule: str


def verdict(curve: list[tuple[float, float | None]]) -> tuple[Literal["pass", "fail"], Threshold]:
    rho = float(np.mean([r for r, _ in curve]))
    structural = None if any(s is None for _, s in curve) else float(np.mean([s for _, s in curve]))
    passed = rho < SPEARMAN_BELOW and (structural is None or structural < SSIM_BELOW)
    ssim_below = None if structural is None else SSIM_BELOW
    rule = (
        f"pass when the mean over the steps of the Spearman rank correlation of |map| with the original is below "
        f"{SPEARMAN_BELOW}" + ("" if structural is None else f" and the mean SSIM below {SSIM_BELOW}")
    )
    return ("pass" if passed else "fail"), Threshold(spearman_below=SPEARMAN_BELOW, ssim_below=ssim_below, rule=rule)
