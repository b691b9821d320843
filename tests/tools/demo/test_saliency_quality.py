"""The demo models' saliency maps point at what the models use: the shape, or the watermark.

Floors sit well below what `python -m tools.demo.evaluate -n 200` measures (the README's table), on a
smaller fresh sample so the test takes under a minute.
"""

from __future__ import annotations

import pytest

from tools.demo.evaluate import METHODS, evaluate

# Measured at n=200: pointing game 62-100 % (random map 11 %); peak on the watermark 90-100 % for the
# pixel methods, 22-24 % for the CAM methods (their 12x12 map spreads the badge's evidence).
POINTING_FLOOR = 0.45
WATERMARK_FLOOR = {"gradcam": 0.08, "gradcam_pp": 0.08}
WATERMARK_FLOOR_PIXEL = 0.7


@pytest.fixture(scope="module")
def measured():
    return evaluate(n=48, seed=31337)


def test_the_demo_models_classify_as_trained(measured):
    summary, _ = measured
    assert summary["shapes accuracy (clean)"] >= 0.95
    # The shortcut: the watermark model calls most watermarked non-circles a circle.
    assert summary["shapes-watermark predicts circle when a non-circle carries the watermark"] >= 0.4


@pytest.mark.parametrize("method", list(METHODS))
def test_maps_point_at_the_shape_far_above_chance(measured, method):
    row = next(r for r in measured[1] if r.method == method)
    assert row.hit_rate >= POINTING_FLOOR
    assert row.hit_rate >= 3 * row.random_rate


@pytest.mark.parametrize("method", list(METHODS))
def test_the_watermark_model_is_caught_looking_at_the_watermark(measured, method):
    row = next(r for r in measured[1] if r.method == method)
    assert row.watermark_rate >= WATERMARK_FLOOR.get(method, WATERMARK_FLOOR_PIXEL)
    # The clean model, on the same images, does not look there: the maps show the shortcut, not the badge.
    assert row.watermark_rate >= row.clean_watermark_rate + 0.05
