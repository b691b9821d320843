"""A transformers text model's class count and labels come from its config.json: the TOML may leave
num_classes out, and where it gives it, it must agree."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.models import ModelPool, ModelSpec, load_config


def test_num_classes_comes_from_the_config(tmp_path, write_bert):
    write_bert(tmp_path / "bert", num_labels=3)
    # No num_classes: the directory's config.json has 3 labels.
    (tmp_path / "models.toml").write_text(
        '[[models]]\nname = "bert"\nkind = "text"\narchitecture = "transformers:bert"\nmax_length = 32\n'
    )
    (spec,) = load_config(tmp_path / "models.toml")
    assert spec.num_classes == 3
    loaded = ModelPool([spec], device="cpu").get("bert")
    assert loaded.labels == ["negative", "positive", "neutral"]


def test_a_toml_that_disagrees_with_the_config_is_refused(tmp_path, write_bert):
    write_bert(tmp_path / "bert", num_labels=2)
    with pytest.raises(ValidationError, match="num_classes = 3 but the model's config.json has 2 labels"):
        ModelSpec(name="bert", kind="text", architecture=f"transformers:{tmp_path / 'bert'}", num_classes=3)
    agreeing = ModelSpec(name="bert", kind="text", architecture=f"transformers:{tmp_path / 'bert'}", num_classes=2)
    assert agreeing.num_classes == 2


def test_without_a_config_num_classes_is_still_required(tmp_path):
    with pytest.raises(ValidationError, match="num_classes"):
        ModelSpec(name="bert", kind="text", architecture=f"transformers:{tmp_path / 'missing'}")
