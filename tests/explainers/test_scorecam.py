"""Score-CAM: the definition summed channel by channel, forward-only rows, and a cost that counts them."""

import pytest
import torch
import torch.nn.functional as F
from explaining import RunContext, explain
from torch import Tensor, nn

from service.errors import InvalidParameter
from service.explainers import ExplainContext

LAYER = "model.3"  # the pass_log CNN's last ReLU: 16 channels of 8x8 at 16x16 input


def images(n: int) -> Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def scorecam(registry, model, x, targets, ctx=None, layer=LAYER):
    explainer, params = registry.parse({"name": "scorecam", "layer": layer})
    return explain(explainer, model, x, torch.tensor(targets), params, ctx or ExplainContext())


def by_definition(model: nn.Module, x: Tensor, target: int, layer: str, objective: str) -> Tensor:
    """One image's Score-CAM, one masked input at a time, as pytorch-grad-cam 1.5.7 defines it."""
    captured = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        model(x[None])
        handle.remove()
        activations = captured[0][0]
        scores = []
        for channel in activations:
            up = F.interpolate(channel[None, None], size=x.shape[1:], mode="bilinear", align_corners=True)[0, 0]
            mask = (up - up.min()) / (up.max() - up.min() + 1e-8)
            logits = model((x * mask)[None])[0]
            scores.append(logits.softmax(0)[target] if objective == "probability" else logits[target])
        weights = torch.stack(scores).softmax(0)
        cam = F.relu((weights[:, None, None] * activations).sum(0))
        return F.interpolate(cam[None, None], size=x.shape[1:], mode="bilinear", align_corners=False)[0, 0]


@pytest.mark.parametrize("objective", ["logit", "probability"])
def test_matches_the_definition_channel_by_channel(registry, pass_log, objective):
    x = images(2)
    result = scorecam(registry, pass_log, x, [1, 3], RunContext(objective=objective, chunk_size=5))
    for i, target in enumerate([1, 3]):
        expected = by_definition(pass_log, x[i], target, LAYER, objective)
        assert expected.max() > 0
        torch.testing.assert_close(result.attributions[i], expected, rtol=1e-5, atol=1e-6)


def test_rows_are_forward_only_and_exactly_what_the_cost_counts(registry, pass_log):
    scorecam(registry, pass_log, images(3), [0, 1, 2], RunContext(chunk_size=5))
    explainer, params = registry.parse({"name": "scorecam"})
    cost = explainer.cost_on(params, (16, 16), {LAYER: (16, 8, 8)}, LAYER)
    assert (cost.forward, cost.backward, cost.driver) == (17, 0, "layer")  # the clean pass + one per channel
    assert sum(rows for rows, _ in pass_log.passes) == 3 * cost.forward
    assert all(inference for _, inference in pass_log.passes), "every pass of Score-CAM runs without autograd"
    assert max(rows for rows, _ in pass_log.passes) == 5  # the masked inputs come chunk by chunk


def test_cost_counts_the_channels_of_the_layer_it_will_use(registry):
    explainer, default = registry.parse("scorecam")
    _, chosen = registry.parse({"name": "scorecam", "layer": "layer1"})
    layers = {"layer1": (64, 16, 16), "layer4": (512, 2, 2)}
    assert explainer.cost(default, (64, 64)).forward_per_channel == 1  # what GET /v1/methods shows
    assert explainer.cost_on(default, (64, 64), layers, "layer4").forward == 513
    assert explainer.cost_on(chosen, (64, 64), layers, "layer4").forward == 65
    with pytest.raises(InvalidParameter) as raised:
        explainer.cost_on(default, (64, 64), layers, None)  # a model without a CAM layer
    assert raised.value.field == "method.layer"


def test_other_methods_cost_the_same_on_any_model(registry):
    for explainer in registry:
        if explainer.name != "scorecam":
            params = explainer.params_model()
            plain = explainer.cost(params, (64, 64))
            assert explainer.cost_on(params, (64, 64), {"layer4": (512, 2, 2)}, "layer4") == plain
