"""service.models.text: transformers directories load into text models, or fail with a short reason."""

from __future__ import annotations

import pytest
import torch

from service.errors import ModelUnavailable
from service.models import ModelPool, ModelSpec
from service.models.text import TextClassifier, rows_of, split


def spec(tiny_bert, **fields) -> ModelSpec:
    entry = {"name": "bert", "kind": "text", "architecture": f"transformers:{tiny_bert}", "num_classes": 2}
    entry["max_length"] = 32
    return ModelSpec(**(entry | fields))


def test_a_transformers_directory_loads_with_its_labels_and_tokenizer(tiny_bert):
    loaded = ModelPool([spec(tiny_bert, max_length=24)], device="cpu").get("bert")
    assert isinstance(loaded.module, TextClassifier) and loaded.module.layer_name == "bert.embeddings.word_embeddings"
    assert loaded.labels == ["negative", "positive"]  # from the config's id2label
    assert loaded.tokenizer.is_fast and loaded.input_shape == (24,)
    assert loaded.row_bytes > 0 and loaded.layers == [] and loaded.default_layer is None


def test_rows_carry_values_mask_and_ids_and_reproduce_the_models_logits(tiny_bert):
    loaded = ModelPool([spec(tiny_bert)], device="cpu").get("bert")
    encoded = loaded.tokenizer(["the movie was great", "bad"], padding=True, return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    rows = rows_of(loaded.module.embed(ids, mask), mask, ids)
    values, got_mask, got_ids = split(rows)
    assert torch.equal(got_ids, ids) and torch.equal(got_mask, mask.float())
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(rows), loaded.module.model(input_ids=ids, attention_mask=mask).logits)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"architecture": "transformers:/nonexistent/dir"}, "cannot load the text model: directory not found"),
        ({"embedding_layer": "bert.nope"}, "embedding_layer 'bert.nope' is not a module of the model"),
        ({"max_length": 128}, "max_length 128 is over the model's 64 positions"),
    ],
)
def test_a_text_model_that_cannot_be_served_fails_with_a_short_reason(tiny_bert, fields, reason):
    pool = ModelPool([spec(tiny_bert, **fields)], device="cpu")
    with pytest.raises(ModelUnavailable, match="failed to load"):
        pool.get("bert")
    assert pool.state("bert") == ("failed", reason)


def test_another_embedding_layer_is_attributed_through_a_captured_forward(tiny_bert):
    loaded = ModelPool([spec(tiny_bert, embedding_layer="bert.embeddings")], device="cpu").get("bert")
    encoded = loaded.tokenizer(["great film"], return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    rows = rows_of(loaded.module.embed(ids, mask), mask, ids)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(rows), loaded.module.model(input_ids=ids, attention_mask=mask).logits)


def test_image_and_text_architectures_are_not_mixed_up():
    with pytest.raises(ValueError, match="text model"):
        ModelSpec(name="x", kind="text", architecture="torchvision:resnet18", num_classes=2)
    with pytest.raises(ValueError, match="text model"):
        ModelSpec(name="x", kind="text", architecture="timm:vit_tiny_patch16_224", num_classes=2)
    # A transformers directory of kind image (the default) is an image classifier (models/zoo.py).
    assert ModelSpec(name="x", architecture="transformers:some/dir", num_classes=2).kind == "image"
