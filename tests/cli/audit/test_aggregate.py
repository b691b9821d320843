"""The audit's running numbers: mean maps per class, right and wrong, region fractions, the images with the
highest fractions, and the mean token scores of text models; checked on hand-made results with exact values."""

from __future__ import annotations

import numpy as np
import pytest
from saliency_client import ExplainResult, Explanation, Prediction, Token

from service.cli.audit.aggregate import Audit
from service.cli.audit.inputs import Item
from service.cli.audit.region import Region


def result(label: str, index: int, saliency: np.ndarray, tokens: list[Token] | None = None) -> ExplainResult:
    target = Prediction(index, label, 0.9, 2.0)
    explanation = Explanation({"name": "gradient"}, saliency, (0.0, 1.0), None, None, {}, tokens)
    return ExplainResult([target], target, [explanation])


def spot(x: int, y: int, value: float = 1.0, size: int = 4) -> np.ndarray:
    saliency = np.zeros((size, size), dtype=np.float32)
    saliency[y, x] = value
    return saliency


CLASSES = ["circle", "square"]


def test_mean_maps_fractions_and_right_and_wrong_per_class():
    audit = Audit(CLASSES, Region(2, 2, 4, 4), examples=1)
    corner, centre = spot(3, 3), spot(1, 1)
    both = spot(3, 3) + spot(0, 0)  # half of its mass in the region
    audit.add(Item("a", "circle/a.png", "circle"), "circle", result("circle", 0, corner))
    audit.add(Item("b", "square/b.png", "square"), "square", result("circle", 0, both))
    audit.add(Item("c", "square/c.png", "square"), "square", result("square", 1, centre))
    audit.add(Item("d", "d.png", None), None, result("square", 1, np.zeros((4, 4), np.float32)))

    circle, square = audit.predicted["circle"], audit.predicted["square"]
    assert (circle.count, square.count) == (2, 2)
    np.testing.assert_array_equal(circle.mean_map, (corner + both) / 2)
    assert circle.fractions == [1.0, 0.5] and circle.peaks_inside == 1  # `both` peaks first at (0, 0), outside
    assert square.fractions == [0.0] and audit.empty_maps == 1  # the all-zero map has no fraction
    assert [e.name for e in circle.examples] == ["circle/a.png"]  # examples=1
    assert audit.right["square"].count == 1 and audit.wrong["square"].count == 1
    assert audit.wrong["square"].examples[0].predicted == "circle"
    assert (audit.explained, audit.labelled, audit.accuracy) == (4, 3, 2 / 3)
    summary = audit.summary()
    assert summary["predicted"]["circle"] == {
        "count": 2, "region_fraction": 0.75, "peak_in_region": 0.5, "mean_map_peak": [3, 3],
    }  # fmt: skip
    assert summary["true"]["square"]["accuracy"] == 0.5 and summary["true"]["square"]["region_fraction"] == 0.25
    assert summary["region"] == "2,2,4,4" and "circle" in summary["predicted"] and summary["skipped"] == 0


def test_the_highest_fractions_are_kept_in_order_earliest_first_on_ties():
    audit = Audit(CLASSES, Region(0, 0, 1, 1), top=3)
    values = {"a": 0.2, "b": 0.9, "c": 0.5, "d": 0.9, "e": 0.1}
    for name, inside in values.items():
        saliency = spot(0, 0, inside) + spot(1, 1, 1 - inside)
        audit.add(Item(name, name, None), None, result("circle", 0, saliency))
    assert [e.name for e in audit.highest_fractions()] == ["b", "d", "c"]
    assert [e.fraction for e in audit.highest_fractions()] == pytest.approx([0.9, 0.9, 0.5])


def test_text_models_get_the_tokens_with_the_highest_mean_score_seen_often_enough():
    audit = Audit(["negative", "positive"], None)

    def tokens(*scored: tuple[str, float]) -> list[Token]:
        return [Token("[CLS]", None, None, True, 0.0)] + [Token(t, 0, 1, False, s) for t, s in scored]

    texts = [
        [("Mike", 0.9), ("great", 0.5), ("lid", 0.0)],
        [("mike", 0.7), ("great", 0.3), ("rare", 1.0)],  # "rare" is seen once: not ranked
        [("mike", 0.8), ("great", 0.4), ("lid", 0.2)],
    ]
    for i, scored in enumerate(texts):
        audit.add(Item("text", f"t.txt:{i + 1}", None), None, result("positive", 1, np.zeros(4), tokens(*scored)))
    top = audit.predicted["positive"].top_tokens(5)
    assert [t for t, _, _ in top] == ["mike", "great"]  # "lid" is seen twice, fewer than 3 times
    assert top[0][1:] == (pytest.approx(0.8), 3) and top[1][1:] == (pytest.approx(0.4), 3)
    assert (
        audit.predicted["positive"].map_sum is None
        and audit.summary()["predicted"]["positive"]["top_tokens"][0][0] == "mike"
    )
