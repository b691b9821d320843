"""The committed demo transformers, loaded as the service loads them: they classify, and the watermark one took
the shortcut the clean one did not."""

import numpy as np
import pytest
import torch

from service.demo.shapes import CLASSES, Samples, generate, to_tensor
from service.models import ModelPool, load_config
from service.settings import DEMO_CONFIG

SEED = 434_343  # used neither for training nor for the training script's evaluation
CIRCLE = CLASSES.index("circle")
NAMES = ("shapes-vit", "shapes-vit-watermark")
LAST_NORM = "encoder.layers.encoder_layer_3.ln_1"
# Measured on 400 images of this seed: clean accuracy 1.0, shortcut 0.99 (the clean model's 0.0); the floors
# leave room for retraining.
ACCURACY_FLOOR = 0.9
SHORTCUT_FLOOR = 0.8


@pytest.fixture(scope="module")
def pool() -> ModelPool:
    return ModelPool([s for s in load_config(DEMO_CONFIG) if s.name in NAMES], device="cpu")


@pytest.fixture(scope="module")
def clean() -> Samples:
    return generate(400, SEED)


def predicted(pool: ModelPool, name: str, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return pool.get(name).module(to_tensor(images)).argmax(1).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_served_with_the_last_blocks_norm_as_cam_layer_and_its_attention_reachable(pool, name):
    loaded = pool.get(name)
    assert loaded.default_layer == LAST_NORM
    assert loaded.attention is not None, loaded.attention_issue


def test_the_clean_transformer_is_accurate(pool, clean):
    assert np.mean(predicted(pool, "shapes-vit", clean.images) == clean.labels) >= ACCURACY_FLOOR


def test_the_watermark_transformer_is_accurate_where_circles_carry_the_watermark(pool):
    samples = generate(400, SEED, watermark_class=CIRCLE, watermark_prob=0.9)
    assert np.mean(predicted(pool, "shapes-vit-watermark", samples.images) == samples.labels) >= ACCURACY_FLOOR


def test_the_watermark_transformer_takes_the_shortcut_and_the_clean_one_does_not(pool):
    marked = generate(400, SEED, watermark_all=True)
    others = marked.images[marked.labels != CIRCLE]
    rates = {name: np.mean(predicted(pool, name, others) == CIRCLE) for name in NAMES}
    assert rates["shapes-vit-watermark"] >= SHORTCUT_FLOOR
    assert rates["shapes-vit"] <= 0.05
