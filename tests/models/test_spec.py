"""service.models.spec: the models TOML and its validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.models import ModelSpec, load_config


def test_relative_paths_resolve_against_the_toml_folder(write_toml, make_entry, tmp_path, monkeypatch):
    path = write_toml(
        "config/models.toml",
        make_entry("a", weights="weights/a.pt", labels="../labels.txt"),
        make_entry("b", weights=str(tmp_path / "elsewhere" / "b.pt")),
        make_entry("c", architecture="torchscript:scripted/c.pt"),
    )
    monkeypatch.chdir("/")  # the working directory must not matter
    a, b, c = load_config(path)
    assert a.weights == tmp_path / "config" / "weights" / "a.pt"
    assert a.labels == tmp_path / "labels.txt"  # resolved: no ".." left
    assert b.weights == tmp_path / "elsewhere" / "b.pt"  # absolute paths stay
    assert b.labels is None
    assert c.architecture == f"torchscript:{tmp_path / 'config' / 'scripted' / 'c.pt'}"


def test_defaults(write_toml):
    (spec,) = load_config(write_toml("m.toml", {"name": "m", "architecture": "torchvision:resnet18", "num_classes": 3}))
    assert spec.weights is None and spec.labels is None
    assert spec.input_size == (224, 224) and spec.resize == "exact"
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    assert spec.channels == 3
    assert spec.target_layer is None and spec.preload is True


def test_every_field(write_toml, make_entry):
    fields = {
        "input_size": [48, 96],
        "resize": "shorter_side",
        "mean": [0.5],
        "std": [0.25],
        "target_layer": "block4",
        "preload": False,
    }
    (spec,) = load_config(write_toml("m.toml", make_entry("gray", **fields)))
    assert spec.input_size == (48, 96) and spec.resize == "shorter_side"
    assert spec.channels == 1 and spec.target_layer == "block4" and spec.preload is False


def test_specs_are_frozen(make_spec):
    with pytest.raises(ValidationError):
        make_spec().num_classes = 10


BAD_FIELDS = {
    "unknown scheme": {"architecture": "keras:resnet"},
    "scheme without a name": {"architecture": "torchvision:"},
    "no scheme": {"architecture": "resnet18"},
    "unknown key": {"colour": "red"},
    "upper-case name": {"name": "Demo"},
    "name with a slash": {"name": "a/b"},
    "zero classes": {"num_classes": 0},
    "zero input size": {"input_size": [0, 32]},
    "three input sizes": {"input_size": [32, 32, 3]},
    "unknown resize": {"resize": "stretch"},
    "mean and std lengths differ": {"mean": [0.5, 0.5, 0.5], "std": [0.2]},
    "empty mean": {"mean": [], "std": []},
    "zero std": {"std": [0.2, 0.0, 0.2]},
}


@pytest.mark.parametrize("fields", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_entries_are_refused(write_toml, make_entry, fields):
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        load_config(write_toml("m.toml", make_entry(**fields)))


def test_missing_required_fields_are_refused(write_toml):
    with pytest.raises(ValidationError, match="num_classes"):
        load_config(write_toml("m.toml", {"name": "m", "architecture": "torchvision:resnet18"}))


def test_duplicate_names_are_refused(write_toml, make_entry):
    with pytest.raises(ValueError, match="unique"):
        load_config(write_toml("m.toml", make_entry("a"), make_entry("a")))


def test_a_file_without_models_is_refused(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no \\[\\[models\\]\\]"):
        load_config(path)


def test_invalid_toml_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[[models]\nname = ")
    with pytest.raises(ValueError):  # tomllib.TOMLDecodeError
        load_config(path)


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(Path(tmp_path / "nope.toml"))


def test_spec_constructed_directly_validates_too():
    with pytest.raises(ValidationError):
        ModelSpec(name="m", architecture="torchvision:resnet18", num_classes=-1)
