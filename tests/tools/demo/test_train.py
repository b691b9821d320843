import tomllib

import pytest
import torch

from service.demo.net import CAM_LAYER, shapes_cnn
from service.demo.shapes import CLASSES
from tools.demo import train


def test_quick_training_writes_loadable_models(tmp_path, capsys):
    train.main(["--quick", "--out", str(tmp_path)])

    config = tomllib.loads((tmp_path / "models.toml").read_text())
    names = [m["name"] for m in config["models"]]
    assert names == ["shapes", "shapes-watermark", "shapes-random-labels", "reviews", "reviews-shortcut"]
    assert (tmp_path / "labels.txt").read_text().splitlines() == list(CLASSES)
    assert [m.get("kind", "image") for m in config["models"]] == ["image", "image", "image", "text", "text"]
    for entry in config["models"][:3]:
        assert entry["architecture"] == "python:service.demo.net:shapes_cnn"
        assert entry["target_layer"] == CAM_LAYER
        assert entry["input_size"] == [96, 96]
        state = torch.load(tmp_path / entry["weights"], weights_only=True)
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
        shapes_cnn(num_classes=entry["num_classes"]).load_state_dict(state, strict=True)
    assert "shapes-watermark" in capsys.readouterr().out


def test_quick_refuses_to_overwrite_the_committed_models():
    with pytest.raises(SystemExit):
        train.main(["--quick"])
