"""timm and Hugging Face image models: their preprocessing from their own configs, and logits equal to the
libraries' own preprocessing and forward on a real photograph, through the service's HTTP API."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from fastapi.testclient import TestClient
from PIL import Image

from service.main import create_app
from service.models.spec import ModelSpec, load_config
from service.settings import Settings
from tests.vits import tiny_hf_vit

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
skimage_data = pytest.importorskip("skimage.data")

LABELS = {0: "cat", 1: "rocket", 2: "astronaut"}


def write_hf_vit(folder: Path, processor: dict | None = None) -> Path:
    """A tiny ViTForImageClassification saved with save_pretrained, with its ViTImageProcessor."""
    tiny_hf_vit(LABELS).save_pretrained(folder)
    kwargs = processor or {"size": {"height": 32, "width": 32}, "image_mean": [0.4, 0.5, 0.6]}
    transformers.ViTImageProcessor(**kwargs).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    write_hf_vit(folder / "hf-vit")
    with torch.random.fork_rng():
        torch.manual_seed(1)
        safetensors.torch.save_file(
            timm.create_model("test_vit", num_classes=3).state_dict(), folder / "vit.safetensors"
        )
    (folder / "models.toml").write_text(
        '[[models]]\nname = "hf"\narchitecture = "transformers:hf-vit"\n\n'
        '[[models]]\nname = "timm"\narchitecture = "timm:test_vit"\nnum_classes = 3\nweights = "vit.safetensors"\n'
    )
    return folder


def test_a_hugging_face_directory_brings_its_classes_and_preprocessing(zoo):
    hf, timm_spec = load_config(zoo / "models.toml")
    assert (hf.kind, hf.num_classes, hf.input_size, hf.resize) == ("image", 3, (32, 32), "exact")
    assert (hf.mean, hf.std, hf.interpolation) == ((0.4, 0.5, 0.6), (0.5, 0.5, 0.5), "bilinear")
    # timm's eval transform: the shorter side to floor(160 / 0.95) = 168, the 160 px centre crop, bicubic.
    assert (timm_spec.input_size, timm_spec.resize, timm_spec.resize_size) == ((160, 160), "shorter_side", 168)
    assert timm_spec.interpolation == "bicubic"


def test_the_toml_overrides_and_must_agree(zoo):
    spec = ModelSpec(name="x", architecture=f"transformers:{zoo / 'hf-vit'}", input_size=(32, 32), mean=(0.5,) * 3)
    assert spec.mean == (0.5, 0.5, 0.5) and spec.resize == "exact"
    with pytest.raises(ValueError, match="config.json has 3 labels"):
        ModelSpec(name="x", architecture=f"transformers:{zoo / 'hf-vit'}", num_classes=5)
    with pytest.raises(ValueError, match="holds its own weights"):
        ModelSpec(name="x", architecture=f"transformers:{zoo / 'hf-vit'}", weights=zoo / "vit.safetensors")


def test_a_preprocessing_the_service_cannot_do_is_refused(tmp_path):
    folder = write_hf_vit(
        tmp_path / "deit",
        {"size": {"height": 40, "width": 40}, "do_center_crop": True, "crop_size": {"height": 32, "width": 32}},
    )
    with pytest.raises(ValueError, match="set input_size and resize in the TOML"):
        ModelSpec(name="x", architecture=f"transformers:{folder}")


def photo_b64() -> tuple[str, Image.Image]:
    image = Image.fromarray(skimage_data.chelsea())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode(), image


@pytest.fixture(scope="module")
def client(zoo):
    settings = Settings(config=zoo / "models.toml", device="cpu")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def served_logits(client, model: str, b64: str) -> torch.Tensor:
    response = client.post(f"/v1/models/{model}/predict", json={"images": [b64], "top_k": 3})
    assert response.status_code == 200, response.text
    predictions = sorted(response.json()["results"][0]["predictions"], key=lambda p: p["index"])
    return torch.tensor([p["logit"] for p in predictions])


def test_hugging_face_logits_are_the_librarys(client, zoo):
    b64, image = photo_b64()
    processor = transformers.AutoImageProcessor.from_pretrained(zoo / "hf-vit")
    model = transformers.AutoModelForImageClassification.from_pretrained(zoo / "hf-vit").eval()
    with torch.no_grad():
        expected = model(**processor(images=image, return_tensors="pt")).logits[0]
    torch.testing.assert_close(served_logits(client, "hf", b64), expected, atol=1e-4, rtol=1e-4)
    info = client.get("/v1/models/hf").json()
    assert info["label_names"] == ["cat", "rocket", "astronaut"] and info["weights"] is True


def test_timm_logits_are_the_librarys_with_safetensors_weights(client, zoo):
    b64, image = photo_b64()
    model = timm.create_model("test_vit", num_classes=3).eval()
    model.load_state_dict(safetensors.torch.load_file(zoo / "vit.safetensors"))
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        expected = model(transform(image.convert("RGB"))[None])[0]
    torch.testing.assert_close(served_logits(client, "timm", b64), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model", ["hf", "timm"])
def test_zoo_models_list_token_layers_and_their_attention(client, model):
    info = client.get(f"/v1/models/{model}").json()
    assert info["state"] == "loaded"
    layout = info["layer_layouts"][info["default_layer"]]
    assert layout.startswith("tokens (N, 1 + ")
    assert info["default_layer"].endswith(("layernorm_before", "norm1"))
    assert "blocks x" in info["attention"]
    json.dumps(info)  # all of it plain JSON
