"""The demo text models' token maps point at what the models use: the sentiment words, or the shortcut.

Floors sit well below what `python -m tools.demo.text.evaluate -n 200` measures (the README's table), on a
smaller fresh sample, through the service's own codec and engine.
"""

from __future__ import annotations

import pytest

from tools.demo.text.evaluate import METHODS, evaluate

# Measured at n=200: top token on a planted sentiment word 52-86 % (a random token 9 %); the shortcut model's
# top token is "mike" on 100 % of signed reviews, the clean model's on none.
POINTING_FLOOR = 0.35
SHORTCUT_FLOOR = 0.7


@pytest.fixture(scope="module")
def measured():
    return evaluate(n=60, seed=4242)


def test_the_demo_text_models_classify_as_trained(measured):
    accuracies, _ = measured
    assert accuracies["reviews"] >= 0.95 and accuracies["reviews-shortcut"] >= 0.95


@pytest.mark.parametrize("method", list(METHODS))
def test_token_maps_point_at_the_sentiment_words_far_above_chance(measured, method):
    row = next(r for r in measured[1] if r.method == method)
    assert row.hit_rate >= POINTING_FLOOR and row.hit_rate >= 3 * row.random_rate


@pytest.mark.parametrize("method", list(METHODS))
def test_the_shortcut_model_is_caught_reading_the_signature(measured, method):
    row = next(r for r in measured[1] if r.method == method)
    assert row.shortcut_rate >= SHORTCUT_FLOOR
    assert row.clean_shortcut_rate <= row.shortcut_rate - 0.5  # the clean model does not look there
