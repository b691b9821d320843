"""service.models.loader: architecture + weights from a spec; every failure is a ModelLoadError with a reason."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from service.demo.net import shapes_cnn
from service.models import ModelPool, load_config
from service.models.loader import ModelLoadError, build, load, read_labels


def test_torchvision_architecture_with_a_saved_state_dict(make_spec, resnet18_weights):
    path, state = resnet18_weights
    model = load(make_spec(architecture="torchvision:resnet18", weights=path, input_size=(64, 64)))
    assert isinstance(model, torchvision.models.ResNet)
    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_python_factory_and_num_classes(make_spec):
    model = load(make_spec(num_classes=7))
    assert model.fc.out_features == 7
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


def test_no_weights_serves_random_weights_with_a_warning(make_spec, caplog):
    with caplog.at_level(logging.WARNING, logger="service.models.loader"):
        model = load(make_spec("random", architecture="torchvision:resnet18"))
    assert isinstance(model, torchvision.models.ResNet) and not model.training
    assert "RANDOM" in caplog.text.upper() and "random" in caplog.text


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_from_a_path_relative_to_the_toml(write_toml, make_entry, tmp_path):
    scripted = torch.jit.script(shapes_cnn().eval())
    (tmp_path / "scripted").mkdir()
    scripted.save(str(tmp_path / "scripted" / "net.pt"))
    (spec,) = load_config(write_toml("models.toml", make_entry(architecture="torchscript:scripted/net.pt")))
    model = load(spec)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), shapes_cnn().eval()(x))


def test_a_state_dict_of_another_shape_does_not_fit(make_spec, tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "ten.pt")
    with pytest.raises(ModelLoadError, match="do not fit"):
        load(make_spec(architecture="torchvision:resnet18", weights=tmp_path / "ten.pt"))


def test_a_state_dict_of_another_architecture_does_not_fit(make_spec, resnet18_weights):
    with pytest.raises(ModelLoadError, match="do not fit"):
        load(make_spec(weights=resnet18_weights[0]))


def test_a_missing_weights_file(make_spec, tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        load(make_spec(weights=tmp_path / "nope.pt"))
    # Clients see the short reason; the operator's log gets the path.
    assert str(caught.value) == "cannot read weights: file not found"
    assert str(tmp_path / "nope.pt") in caught.value.detail


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("missing", "weights do not fit the architecture: 1 missing key"),
        ("extra", "weights do not fit the architecture: 2 unexpected keys"),
        ("shape", "weights do not fit the architecture: 1 shape mismatch"),
    ],
)
def test_a_state_dict_that_does_not_fit_says_how_in_counts(make_spec, resnet18_weights, tmp_path, state, reason):
    weights = dict(resnet18_weights[1])
    if state == "missing":
        del weights["fc.bias"]
    elif state == "extra":
        weights["extra.a"] = weights["extra.b"] = torch.zeros(1)
    else:
        weights["fc.bias"] = torch.zeros(7)
    torch.save(weights, tmp_path / "w.pt")
    with pytest.raises(ModelLoadError) as caught:
        load(make_spec(architecture="torchvision:resnet18", weights=tmp_path / "w.pt"))
    assert str(caught.value) == reason
    assert "Error(s) in loading" not in str(caught.value), "no torch advice text for clients"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n" * 8, b"PK\x03\x04" + b"\0" * 64], ids=str)
def test_a_corrupt_weights_file(make_spec, tmp_path, content):
    (tmp_path / "corrupt.pt").write_bytes(content)
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        load(make_spec(weights=tmp_path / "corrupt.pt"))


def test_a_file_that_is_not_a_state_dict(make_spec, tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(ModelLoadError, match="not a state_dict"):
        load(make_spec(weights=tmp_path / "list.pt"))


def test_pickled_code_is_never_run(make_spec, tmp_path):
    torch.save(shapes_cnn(), tmp_path / "module.pt")  # a whole pickled module, not a state_dict
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        load(make_spec(weights=tmp_path / "module.pt"))


@pytest.mark.parametrize(
    "architecture",
    ["torchvision:no_such_net", "python:no_such_package.net:factory", "python:service.demo.net:no_such_factory"],
)
def test_unknown_architectures(make_spec, architecture):
    with pytest.raises(ModelLoadError, match="cannot build"):
        build(make_spec(architecture=architecture))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_a_missing_torchscript_file(make_spec, tmp_path):
    with pytest.raises(ModelLoadError, match="cannot build"):
        build(make_spec(architecture=f"torchscript:{tmp_path / 'nope.pt'}"))


def test_labels(make_spec, tmp_path):
    (tmp_path / "labels.txt").write_text("circle\n\nsquare\n  triangle  \nstar\n")
    assert read_labels(make_spec(labels=tmp_path / "labels.txt")) == ["circle", "square", "triangle", "star"]
    assert read_labels(make_spec()) is None
    with pytest.raises(ModelLoadError, match="3 labels for 4 classes"):
        (tmp_path / "three.txt").write_text("a\nb\nc\n")
        read_labels(make_spec(labels=tmp_path / "three.txt"))
    with pytest.raises(ModelLoadError, match="cannot read labels"):
        read_labels(make_spec(labels=tmp_path / "nope.txt"))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"architecture": "torchvision:no_such_net"}, "cannot build"),
        ({"weights": "/nonexistent/weights.pt"}, "cannot read weights"),
        ({"labels": "/nonexistent/labels.txt"}, "cannot read labels"),
        ({"input_size": (1, 1)}, "warm-up forward failed"),  # too small for the demo CNN's pooling
        ({"target_layer": "fc"}, "target_layer 'fc' cannot be a CAM layer"),
    ],
)
def test_the_pool_marks_a_model_that_cannot_load_as_failed_with_its_reason(make_spec, fields, reason):
    pool = ModelPool([make_spec("bad", **fields)], device="cpu")
    state, why = pool.state("bad")
    assert state == "not_loaded"
    pool.preload()  # does not raise
    state, why = pool.state("bad")
    assert state == "failed" and reason in why
