"""The engine's entry point: input and target checks before any model work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from service.errors import InvalidParameter, InvalidTarget
from service.explainers import ExplainContext, default_registry, explain


def linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()


@pytest.mark.parametrize("targets", [[-2, 0], [0, 3], [0]])
def test_bad_targets_are_client_errors(targets):
    explainer, params = default_registry().parse("gradient")
    with pytest.raises(InvalidTarget):
        explain(explainer, linear(), torch.randn(2, 3, 2, 2), torch.tensor(targets), params, ExplainContext(), 3)


def test_an_empty_batch_is_refused_clearly():
    explainer, params = default_registry().parse("gradient")
    with pytest.raises(ValueError, match="N >= 1"):
        explain(explainer, linear(), torch.randn(0, 3, 2, 2), None, params, ExplainContext())


def test_an_empty_layer_name_is_a_parameter_error():
    with pytest.raises(InvalidParameter) as info:
        default_registry().parse({"name": "gradcam", "layer": ""})
    assert info.value.field == "method.layer"
