"""Deletion and insertion against a direct implementation of their definitions (RISE's CausalMetric)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from service.core.plans import explain_here
from service.explainers import PixelSpace, default_registry
from service.explainers.faithfulness import EvaluateSpec, auc, ranking
from service.models import ModelPool, ModelSpec
from service.settings import Settings

REGISTRY = default_registry()
SIZE = 12


@pytest.fixture(scope="module")
def loaded():
    spec = ModelSpec(
        name="cnn", architecture="python:service.demo.net:shapes_cnn", num_classes=4, input_size=(SIZE, SIZE)
    )
    return ModelPool([spec], device="cpu").get("cnn")


def direct_curve(model, x, order: list[int], target: int, steps: int, metric: str, pixels: PixelSpace) -> list[float]:
    """The definition, one image and one step at a time."""
    height, width = x.shape[1:]
    per_step = math.ceil(height * width / steps)
    black = pixels.from_pixels(torch.zeros_like(x)[None])[0]
    blurred = TF.gaussian_blur(x[None], kernel_size=[11, 11], sigma=[5.0, 5.0])[0]
    start, end = (x, black) if metric == "deletion" else (blurred, x)
    scores = []
    for k in range(steps + 1):
        image = start.clone()
        for p in order[: min(k * per_step, height * width)]:
            image[:, p // width, p % width] = end[:, p // width, p % width]
        with torch.no_grad():
            scores.append(float(model(image[None]).softmax(dim=1)[0, target]))
    return scores


@pytest.mark.parametrize("metric", ["deletion", "insertion"])
@pytest.mark.parametrize("steps", [5, 7])
def test_curves_and_aucs_follow_the_definitions(loaded, metric, steps):
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    explainer, params = REGISTRY.parse("gradient")
    spec = EvaluateSpec(metrics=[metric], steps=steps, seed=3)
    result = explain_here(loaded, explainer, params, x, torch.tensor([-1, 2]), "logit", Settings(), (spec, ["max_abs"]))
    measured = result.faithfulness[metric]
    pixels = PixelSpace(loaded.spec.mean, loaded.spec.std)
    generator = torch.Generator().manual_seed(3)
    random_orders = [torch.randperm(SIZE * SIZE, generator=generator).argsort().tolist() for _ in range(2)]
    model = loaded.prepared.original  # the user's model, not the folded one the service runs
    for i in range(2):
        saliency = result.attributions[i].abs().amax(dim=0).flatten().tolist()
        order = sorted(range(SIZE * SIZE), key=lambda p: (-saliency[p], p))  # descending, ties by index
        target = int(result.targets[i])
        expected = direct_curve(model, x[i], order, target, steps, metric, pixels)
        assert measured["curve"][i].tolist() == pytest.approx(expected, abs=1e-5)
        trapezoid = (sum(expected) - expected[0] / 2 - expected[-1] / 2) / steps
        assert float(measured["auc"][i]) == pytest.approx(trapezoid, abs=1e-5)
        at_random = direct_curve(model, x[i], random_orders[i], target, steps, metric, pixels)
        assert float(measured["random_auc"][i]) == pytest.approx(float(auc(torch.tensor([at_random]))[0]), abs=1e-5)


def test_ranking_breaks_ties_by_pixel_index():
    maps = torch.tensor([[[0.5, 1.0], [0.5, 0.0]]])
    assert ranking(maps).tolist() == [[1, 0, 2, 3]]  # pixel 1 first, then 0 and 2 (tied) in index order


def test_the_auc_is_the_trapezoid_rule_on_the_unit_interval():
    assert float(auc(torch.tensor([[1.0, 1.0, 1.0]]))[0]) == 1.0
    assert float(auc(torch.tensor([[1.0, 0.0]]))[0]) == 0.5


@pytest.mark.parametrize("bad", [{"metrics": []}, {"metrics": ["deletion"], "steps": 0}, {"metrics": ["x"]}])
def test_an_evaluate_spec_is_checked(bad):
    with pytest.raises(ValueError):
        EvaluateSpec.model_validate(bad)


@pytest.fixture(scope="module")
def reviews():
    from service.models import load_config
    from service.settings import DEMO_CONFIG

    return ModelPool([s for s in load_config(DEMO_CONFIG) if s.name == "reviews"], device="cpu").get("reviews")


@pytest.mark.parametrize("metric", ["deletion", "insertion"])
def test_text_curves_mask_the_ranked_tokens_by_their_ids(reviews, metric):
    """For texts the definition is on token ids: the ranked user tokens become [MASK], special tokens and
    padding never change; checked with the Hugging Face model itself, one text and one step at a time."""
    from service.codecs import codec_for

    texts = ["the kettle is not great and the lid broke", "lovely blender, works well"]
    batch = codec_for("text").decode(texts, reviews, Settings(), None)
    explainer, params = REGISTRY.parse("input_x_gradient", "text")
    steps = 3
    spec = EvaluateSpec(metrics=[metric], steps=steps, seed=5)
    result = explain_here(
        reviews, explainer, params, batch.x, torch.tensor([-1, 0]), "logit", Settings(), (spec, ["sum"])
    )
    tokenizer, hf = reviews.tokenizer, reviews.module.model
    for i, text in enumerate(texts):
        encoded = tokenizer(text, return_tensors="pt")
        ids = encoded["input_ids"][0]
        real = [t for t in range(len(ids)) if int(ids[t]) not in tokenizer.all_special_ids]
        scores = result.attributions[i, : len(ids), :-2].sum(dim=-1)
        order = sorted(real, key=lambda t: (-float(scores[t]), t))
        per_step = math.ceil(len(real) / steps)
        target = int(result.targets[i])
        expected = []
        for k in range(steps + 1):
            moved = set(order[: k * per_step])
            changed = [
                (tokenizer.mask_token_id if (t in moved) == (metric == "deletion") else int(ids[t]))
                if t in real
                else int(ids[t])
                for t in range(len(ids))
            ]
            with torch.no_grad():
                logits = hf(input_ids=torch.tensor([changed]), attention_mask=encoded["attention_mask"]).logits
            expected.append(float(logits.softmax(dim=1)[0, target]))
        assert result.faithfulness[metric]["curve"][i].tolist() == pytest.approx(expected, abs=1e-5)
        assert float(result.faithfulness[metric]["auc"][i]) == pytest.approx(
            float(auc(torch.tensor([expected]))[0]), abs=1e-5
        )
