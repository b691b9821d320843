import tomllib

import pytest
import torch

from service.demo.net import CAM_LAYER
from service.demo.shapes import CLASSES
from tools.demo import catalog, train

IMAGE_MODELS = ["shapes", "shapes-watermark", "shapes-random-labels", "shapes-vit", "shapes-vit-watermark"]


def test_quick_training_writes_loadable_models(tmp_path, capsys):
    train.main(["--quick", "--out", str(tmp_path)])

    config = tomllib.loads((tmp_path / "models.toml").read_text())
    names = [m["name"] for m in config["models"]]
    assert names == [*IMAGE_MODELS, *catalog.DETECTORS, "reviews", "reviews-shortcut", catalog.LANGUAGE_MODEL]
    assert (tmp_path / "labels.txt").read_text().splitlines() == list(CLASSES)
    assert (tmp_path / catalog.DETECTOR_LABELS).read_text().splitlines() == ["__background__", *CLASSES]
    kinds = [m.get("kind", "image") for m in config["models"]]
    assert kinds == ["image"] * 5 + ["detection"] * 2 + ["text", "text", "causal_lm"]
    assert config["models"][-1]["generation"] == {"max_new_tokens": 8}
    for entry in config["models"][:5]:
        vit = entry["name"].startswith("shapes-vit")
        architecture = catalog.VIT if vit else catalog.CNN
        assert entry["architecture"] == f"python:{architecture.factory}"
        # A transformer's CAM layer is the service's default (its last block), not a fixed name.
        assert entry.get("target_layer") == (None if vit else CAM_LAYER)
        assert entry["input_size"] == [96, 96]
        state = torch.load(tmp_path / entry["weights"], weights_only=True)
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
        architecture.build().load_state_dict(state, strict=True)
    assert "shapes-vit-watermark" in capsys.readouterr().out


def test_only_trains_the_models_named(tmp_path):
    train.main(["--quick", "--out", str(tmp_path), "--only", "shapes-vit"])
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["shapes-vit.pt"]
    assert "shapes-vit-watermark" in (tmp_path / "models.toml").read_text()  # the config lists them all


def test_quick_refuses_to_overwrite_the_committed_models():
    with pytest.raises(SystemExit):
        train.main(["--quick"])


def test_only_refuses_unknown_models(tmp_path):
    with pytest.raises(SystemExit):
        train.main(["--quick", "--out", str(tmp_path), "--only", "shapes-vitt"])
