"""The similarity measures and the verdict, on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from service.core.sanity.similarity import mean_similarity, rank_correlation, ssim
from service.core.sanity.verdict import SPEARMAN_BELOW, SSIM_BELOW, verdict

RNG = np.random.default_rng(0)


def test_rank_correlation_is_spearman_of_absolute_values():
    a, b = RNG.normal(size=(12, 12)), RNG.normal(size=(12, 12))
    assert rank_correlation(a, b) == pytest.approx(spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic)
    assert rank_correlation(a, -a) == pytest.approx(1.0)  # a sign flip points at the same pixels
    ramp = np.arange(16.0).reshape(4, 4)
    assert rank_correlation(ramp, ramp[::-1, ::-1]) == pytest.approx(-1.0)


def test_a_blank_map_resembles_nothing():
    assert rank_correlation(RNG.normal(size=(8, 8)), np.zeros((8, 8))) == 0.0
    sparse = np.zeros((16, 16))
    sparse[3, 4] = 1.0  # SSIM itself finds a mostly dark map much like an all-dark one
    assert structural_similarity(sparse, np.zeros((16, 16)), data_range=1.0) > 0.8
    assert ssim(sparse, np.zeros((16, 16))) == ssim(np.zeros((16, 16)), sparse) == 0.0


def test_ssim_scales_absolute_values_to_one():
    a, b = RNG.normal(size=(16, 16)), RNG.normal(size=(16, 16))
    expected = structural_similarity(np.abs(a) / np.abs(a).max(), np.abs(b) / np.abs(b).max(), data_range=1.0)
    assert ssim(a, b) == pytest.approx(expected)
    assert ssim(a, 3 * a) == pytest.approx(1.0)  # scale-free
    assert ssim(a[0], b[0]) is None  # texts: no picture
    assert ssim(a[:5, :5], b[:5, :5]) is None  # smaller than the window


def test_mean_similarity_averages_over_inputs():
    a = [RNG.normal(size=(8, 8)) for _ in range(3)]
    b = [RNG.normal(size=(8, 8)) for _ in range(3)]
    rho, structural = mean_similarity(a, b)
    assert rho == pytest.approx(np.mean([rank_correlation(x, y) for x, y in zip(a, b, strict=True)]))
    assert structural == pytest.approx(np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)]))


def test_verdict_reads_the_mean_over_the_cascade():
    low, high = SPEARMAN_BELOW - 0.1, SPEARMAN_BELOW + 0.1
    # The last step alone is below both thresholds; the cascade's mean is not: a fail.
    assert verdict([(0.9, 0.9), (0.9, 0.9), (0.0, 0.0)])[0] == "fail"
    assert verdict([(low, SSIM_BELOW - 0.1)])[0] == "pass"
    assert verdict([(high, SSIM_BELOW - 0.1)])[0] == "fail"
    assert verdict([(low, SSIM_BELOW + 0.1)])[0] == "fail"
    result, threshold = verdict([(low, None)])  # texts: rank correlation alone
    assert result == "pass" and threshold["ssim_below"] is None
