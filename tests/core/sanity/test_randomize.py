"""The randomization cascade: which blocks, in which order, and a copy that leaves the served model alone."""

from __future__ import annotations

import pytest
import torch

from service.core.sanity.randomize import blocks, fresh_copy, randomize
from service.demo.net import shapes_cnn
from service.models import ModelPool, load_config
from service.settings import DEMO_CONFIG


def test_blocks_are_the_parameterized_top_level_children_last_first():
    assert [name for name, _ in blocks(shapes_cnn())] == ["fc", "block4", "block3", "block2", "block1"]


def test_a_detectors_blocks_are_its_heads_parts_fpn_and_backbone_stages_last_first():
    from detectors import wrapped

    from service.demo.detector import shapes_detector
    from service.models.detection import Detector

    assert [name for name, _ in blocks(Detector(shapes_detector()))] == [
        "head.regression_head", "head.classification_head",
        "backbone.body.stage4", "backbone.body.stage3", "backbone.body.stage2", "backbone.body.stage1",
    ]  # fmt: skip
    # Faster R-CNN: the box predictor first; MobileNet's 17 layers are one step, not 17.
    _, detector = wrapped()
    names = [name for name, _ in blocks(detector)]
    assert names == ["roi_heads.box_predictor", "roi_heads.box_head", "rpn.head", "backbone.fpn", "backbone.body"]
    covered = {id(p) for _, block in blocks(detector) for p in block.parameters()}
    assert covered == {id(p) for p in detector.parameters()}  # every parameter is randomized by some step


def test_randomize_reinitializes_the_block_and_nothing_else():
    model = shapes_cnn()
    with torch.no_grad():  # as if trained: the reset must drop all of it
        for bn in (model.block4[1], model.block4[4]):
            bn.weight.mul_(2.0), bn.bias.add_(1.0), bn.running_mean.add_(1.0), bn.running_var.mul_(3.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    randomize(model.block4, seed=3)
    after = model.state_dict()
    for key, value in before.items():
        if not key.startswith("block4."):
            assert torch.equal(value, after[key]), key
    for conv in ("block4.0.weight", "block4.3.weight"):
        assert not torch.equal(before[conv], after[conv])
        assert float(after[conv].std()) == pytest.approx(
            float(before[conv].std()), rel=0.2
        )  # the layer's own initializer
    for bn in ("block4.1", "block4.4"):
        assert torch.equal(after[f"{bn}.weight"], torch.ones(64)) and torch.equal(after[f"{bn}.bias"], torch.zeros(64))
        assert torch.equal(after[f"{bn}.running_mean"], torch.zeros(64))
        assert torch.equal(after[f"{bn}.running_var"], torch.ones(64))


def test_randomize_is_seeded_and_leaves_the_global_generator_alone():
    a, b = shapes_cnn(), shapes_cnn()
    state = torch.random.get_rng_state()
    randomize(a.fc, seed=5)
    randomize(b.fc, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.fc.weight, b.fc.weight)
    randomize(b.fc, seed=6)
    assert not torch.equal(a.fc.weight, b.fc.weight)


@pytest.fixture(scope="module")
def pool():
    return ModelPool([s for s in load_config(DEMO_CONFIG) if s.name in ("shapes", "reviews")], device="cpu")


@pytest.mark.parametrize("name", ["shapes", "reviews"])
def test_fresh_copy_computes_what_the_served_model_does_and_shares_nothing(pool, name):
    loaded = pool.get(name)
    copy = fresh_copy(loaded)
    served = loaded.prepared.original
    assert not set(map(id, copy.parameters())) & set(map(id, served.parameters()))
    for (k, v), (k2, v2) in zip(served.state_dict().items(), copy.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    if name == "shapes":
        x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert torch.allclose(copy(x), served(x), atol=1e-5)
    else:  # the text wrapper's own parts are ours: the cascade randomizes the user's model's blocks
        # and a transformer's blocks one at a time, output first
        assert [n for n, _ in blocks(copy)] == [
            "classifier",
            "bert.pooler",
            "bert.encoder.layer.1",
            "bert.encoder.layer.0",
            "bert.embeddings",
        ]


def test_a_vits_blocks_are_randomized_one_at_a_time():
    from service.demo.vit import shapes_vit

    assert [n for n, _ in blocks(shapes_vit())] == [
        "heads",
        "encoder.ln",
        *(f"encoder.layers.encoder_layer_{i}" for i in (3, 2, 1, 0)),
        "encoder",  # its position embedding, after the blocks it feeds
        "conv_proj",
    ]
