"""The one row count (service/core/rows.py): every method, every input, faithfulness curves and Score-CAM's
channels; the limit error names what to lower."""

from __future__ import annotations

import pytest

from service.core.rows import RowCount, check_request, count_rows
from service.errors import PayloadTooLarge
from service.explainers import default_registry
from service.explainers.faithfulness import EvaluateSpec
from service.models import ModelPool, load_config
from service.settings import DEMO_CONFIG, Settings

REGISTRY = default_registry()


@pytest.fixture(scope="module")
def shapes():
    return ModelPool(load_config(DEMO_CONFIG), device="cpu").get("shapes")


def methods(*specs):
    return [REGISTRY.parse(spec) for spec in specs]


def test_rows_are_each_methods_passes_per_input_times_the_inputs(shapes):
    ig = {"name": "integrated_gradients", "steps": 30}  # 32 forward passes: the steps, the input, the baseline
    count = count_rows(shapes, methods(ig, "gradient"), 5)
    assert (count.per_input, count.inputs, count.total, count.driver) == (33, 5, 165, "steps")


def test_faithfulness_curves_add_their_rows_per_method(shapes):
    evaluate = EvaluateSpec(metrics=["deletion"], steps=4)
    plain = count_rows(shapes, methods("gradient", "gradcam"), 2)
    evaluated = count_rows(shapes, methods("gradient", "gradcam"), 2, evaluate)
    assert evaluated.total - plain.total == 2 * 2 * evaluate.rows_per_image() == 2 * 2 * 2 * 5


def test_score_cam_counts_a_pass_per_channel_of_its_layer(shapes):
    channels = dict(shapes.layers)[shapes.default_layer][0]
    assert count_rows(shapes, methods("scorecam"), 1).total == 1 + channels


def test_over_the_limit_is_a_413_naming_what_to_lower():
    with pytest.raises(PayloadTooLarge) as info:
        check_request(RowCount(32, 5, "steps"), Settings(max_passes_per_request=159), "images")
    assert str(info.value).startswith("5 images x 32 model passes = 160 passes is over the 159 limit")
    assert info.value.field == "method.steps"
    check_request(RowCount(32, 5, "steps"), Settings(max_passes_per_request=160), "images")


def test_sets_of_maps_multiply_the_rows_and_name_the_inputs():
    with pytest.raises(PayloadTooLarge) as info:
        check_request(RowCount(2, 3), Settings(max_passes_per_request=20), "texts", sets=4)
    assert "3 texts x 2 model passes x 4 sets of maps = 24 passes" in str(info.value)
    assert info.value.field == "texts"
