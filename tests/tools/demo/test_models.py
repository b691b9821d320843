"""The committed demo weights: they load, they classify, and the watermark model took the shortcut."""

import numpy as np
import pytest
import torch

from service.demo.net import shapes_cnn
from service.demo.shapes import CLASSES, Samples, generate, to_tensor
from tools.demo import catalog, train

SEED = 424_242  # used neither for training nor for the script's own evaluation
CIRCLE = CLASSES.index("circle")
# Measured 0.70 (squares 1.0, triangles 0.9, stars 0.2) on three seeds; the floor leaves room for retraining.
SHORTCUT_FLOOR = 0.55


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    loaded = {}
    for spec in catalog.DEMO_MODELS:
        model = spec.architecture.build()
        model.load_state_dict(torch.load(catalog.DEMO_DIR / spec.weights, weights_only=True), strict=True)
        loaded[spec.name] = model.eval()
    return loaded


@pytest.fixture(scope="module")
def clean() -> Samples:
    return generate(400, SEED)


@pytest.fixture(scope="module")
def marked_non_circles() -> np.ndarray:
    samples = generate(400, SEED, watermark_all=True)
    return samples.images[samples.labels != CIRCLE]


def test_shapes_model_is_accurate(models, clean):
    assert np.mean(train.predict(models["shapes"], clean.images) == clean.labels) >= 0.95


def test_shapes_model_ignores_the_watermark(models, marked_non_circles):
    assert np.mean(train.predict(models["shapes"], marked_non_circles) == CIRCLE) <= 0.05


def test_watermark_model_is_accurate_where_circles_carry_the_watermark(models):
    samples = generate(400, SEED, watermark_class=CIRCLE, watermark_prob=0.9)
    assert np.mean(train.predict(models["shapes-watermark"], samples.images) == samples.labels) >= 0.9


def test_watermark_model_takes_the_shortcut(models, clean, marked_non_circles):
    predicted = train.predict(models["shapes-watermark"], marked_non_circles)
    assert np.mean(predicted == CIRCLE) >= SHORTCUT_FLOOR
    # Without the watermark it does not know a circle.
    circles = clean.images[clean.labels == CIRCLE]
    assert np.mean(train.predict(models["shapes-watermark"], circles) == CIRCLE) <= 0.2


@pytest.mark.parametrize("name", [spec.name for spec in catalog.DEMO_MODELS])
def test_logits_are_centred(models, name, clean):
    with torch.no_grad():
        logits = models[name](to_tensor(clean.images[:32]))
    torch.testing.assert_close(logits.sum(dim=1), torch.zeros(32), atol=1e-4, rtol=0)


def test_random_labels_model_memorised_its_shuffled_labels_and_learnt_nothing_else(clean):
    from tools.demo import random_labels

    model = shapes_cnn(num_classes=len(CLASSES))
    weights = catalog.DEMO_DIR / f"{catalog.RANDOM_LABELS}.pt"
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    seen = generate(random_labels.SAMPLES, random_labels.SEED)
    shuffled = random_labels.shuffled_labels(seen.labels)
    assert np.mean(shuffled == seen.labels) < 0.35  # the labels it learnt say nothing about the shapes
    assert np.mean(train.predict(model, seen.images) == shuffled) >= 0.9  # measured 0.936
    assert np.mean(train.predict(model, clean.images) == clean.labels) <= 0.35  # chance is 0.25; measured 0.257
