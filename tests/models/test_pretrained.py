"""service.models.pretrained: torchvision's weights by name, offline. The checkpoint is a random squeezenet1_1
placed where torchvision itself looks for it in a temporary TORCH_HOME; no test can reach the network (the
proxy variables point at a closed port)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pydantic import ValidationError

from service.codecs.image.transforms import to_input
from service.errors import ModelUnavailable
from service.models import ModelPool, ModelSpec, load_config, loader, pretrained

WEIGHTS = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1  # 1.2 M parameters: quick to build and save


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture(scope="session")
def squeezenet_state() -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return torchvision.models.squeezenet1_1().state_dict()


@pytest.fixture
def cached(torch_home, squeezenet_state) -> Path:
    """The fake checkpoint under the name torchvision expects: torch.hub's own loader finds it there."""
    path = torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    path.parent.mkdir(parents=True)
    torch.save(squeezenet_state, path)
    assert WEIGHTS.get_state_dict(progress=False, weights_only=True).keys() == squeezenet_state.keys()
    return path


def spec(**fields) -> ModelSpec:
    return ModelSpec(**{"name": "squeeze", "architecture": "torchvision:squeezenet1_1", **fields})


def test_the_weights_metadata_fills_what_the_toml_leaves_out(write_toml):
    toml = write_toml(
        "m.toml", {"name": "sq", "architecture": "torchvision:squeezenet1_1", "weights": "torchvision:DEFAULT"}
    )
    (loaded,) = load_config(toml)
    assert (loaded.weights, loaded.pretrained, loaded.num_classes) == (None, "IMAGENET1K_V1", 1000)
    assert (loaded.input_size, loaded.resize, loaded.resize_size) == ((224, 224), "shorter_side", 256)
    assert (loaded.mean, loaded.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert loaded.interpolation == "bilinear"
    # An enum member's name, and its full name, mean the same; so do ResNet50's own.
    assert spec(weights="torchvision:IMAGENET1K_V1") == spec(weights="torchvision:SqueezeNet1_1_Weights.IMAGENET1K_V1")
    v2 = ModelSpec(name="r50", architecture="torchvision:resnet50", weights="torchvision:IMAGENET1K_V2")
    assert (v2.pretrained, v2.resize_size, v2.input_size) == ("IMAGENET1K_V2", 232, (224, 224))
    swin = ModelSpec(name="swin", architecture="torchvision:swin_t", weights="torchvision:DEFAULT")
    assert (swin.interpolation, swin.resize_size) == ("bicubic", 232)


def test_the_toml_overrides_the_metadata(write_toml, tmp_path):
    (tmp_path / "labels.txt").write_text("".join(f"class {i}\n" for i in range(1000)))
    entry = {
        "name": "sq",
        "architecture": "torchvision:squeezenet1_1",
        "weights": "torchvision:IMAGENET1K_V1",
        "labels": "labels.txt",
        "input_size": [96, 128],
        "mean": [0.5, 0.5, 0.5],
        "interpolation": "bicubic",
    }
    (loaded,) = load_config(write_toml("m.toml", entry))
    assert loaded.labels == tmp_path / "labels.txt" and loaded.weights is None  # only real paths resolve
    # The geometry goes as a whole: a given input_size takes none of the weights' resize and crop.
    assert (loaded.input_size, loaded.resize, loaded.resize_size) == ((96, 128), "exact", None)
    assert (loaded.mean, loaded.std, loaded.interpolation) == ((0.5, 0.5, 0.5), (0.229, 0.224, 0.225), "bicubic")
    assert loader.read_labels(loaded)[:2] == ["class 0", "class 1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"weights": "torchvision:IMAGENET1K_V9"},
            "has no weights 'IMAGENET1K_V9'; torchvision has: DEFAULT, IMAGENET1K_V1",
        ),
        ({"weights": "torchvision:ResNet18_Weights.IMAGENET1K_V1"}, "squeezenet1_1 has no weights"),
        ({"weights": "torchvision:DEFAULT", "num_classes": 4}, "num_classes is 4, but SqueezeNet1_1_Weights"),
        (
            {"architecture": "python:service.demo.net:shapes_cnn", "weights": "torchvision:DEFAULT"},
            "needs architecture",
        ),
        ({"architecture": "torchvision:nope", "weights": "torchvision:DEFAULT"}, "no model 'nope'"),
        ({"weights": "torchvision:DEFAULT", "resize": "exact", "resize_size": 256}, "resize_size needs"),
    ],
    ids=["unknown-member", "another-models-weights", "num-classes", "not-torchvision", "unknown-model", "resize-size"],
)
def test_bad_weights_names_are_config_errors(fields, message):
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_loads_the_cached_checkpoint_with_the_metadata_labels(cached, squeezenet_state):
    pool = ModelPool([spec(weights="torchvision:DEFAULT")], device="cpu")
    model = pool.get("squeeze")
    assert pool.state("squeeze") == ("loaded", None)
    assert model.labels == WEIGHTS.meta["categories"] and model.labels[:2] == ["tench", "goldfish"]
    torch.testing.assert_close(
        model.prepared.original.state_dict()["classifier.1.weight"], squeezenet_state["classifier.1.weight"]
    )
    assert model.default_layer is not None


@pytest.mark.parametrize(
    ("architecture", "size"), [("squeezenet1_1", (451, 300)), ("squeezenet1_1", (300, 451)), ("swin_t", (451, 300))]
)
def test_preprocessing_is_the_weights_transforms(photo, architecture, size):
    """The same pixels as weights.transforms() (swin_t: bicubic, resize 232), and where they came from."""
    picture = photo.resize(size)
    model = ModelSpec(name="m", architecture=f"torchvision:{architecture}", weights="torchvision:DEFAULT")
    ours, geometry = to_input(picture, model)
    theirs = torchvision.models.get_model_weights(architecture).DEFAULT.transforms()(picture)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    resized = model.resize_size * max(size) // min(size)  # the longer side, truncated as torchvision does
    long_offset = round((resized - 224) / 2) * max(size) / resized
    short_offset = (model.resize_size - 224) / 2 * min(size) / model.resize_size
    left, top = (long_offset, short_offset) if size[0] > size[1] else (short_offset, long_offset)
    assert geometry.box == pytest.approx((left, top, size[0] - left, size[1] - top), abs=1e-9)


def test_without_the_file_and_without_a_network_the_model_fails_fast_with_the_reason(torch_home, caplog):
    pool = ModelPool([spec(weights="torchvision:DEFAULT")], device="cpu")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as caught:
        pool.get("squeeze")
    assert time.perf_counter() - started < 5
    reason = "weights not in the torch cache ($TORCH_HOME) and the download failed: ConnectError"
    assert pool.state("squeeze") == ("failed", reason)
    assert reason in str(caught.value) and str(torch_home) not in str(caught.value)
    assert "squeezenet1_1-b8a52dc0.pth" in caplog.text  # the operator learns where to put the file
    assert list((torch_home / "hub" / "checkpoints").iterdir()) == []  # nothing half-written


@pytest.mark.filterwarnings("ignore:The default weight initialization of GoogleNet")
def test_googlenet_is_built_as_its_weights_expect():
    model = loader.build(ModelSpec(name="g", architecture="torchvision:googlenet", weights="torchvision:DEFAULT"))
    assert model.transform_input is True
    assert (
        loader.build(ModelSpec(name="g", architecture="torchvision:googlenet", num_classes=10)).transform_input is False
    )


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 serving the bytes put in its dict, by path."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", files
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch) -> None:
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)


def test_download_checks_the_hash_in_the_file_name(server, tmp_path, no_proxy):
    base, files = server
    data = b"weights" * 1000
    name = f"net-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    files[f"/{name}"] = data
    pretrained.download(f"{base}/{name}", tmp_path / "cache" / name)
    assert (tmp_path / "cache" / name).read_bytes() == data
    files["/net-00000000.pth"] = data
    with pytest.raises(pretrained.DownloadFailed, match="do not match their hash"):
        pretrained.download(f"{base}/net-00000000.pth", tmp_path / "cache" / "net-00000000.pth")
    with pytest.raises(pretrained.DownloadFailed, match="HTTPStatusError"):
        pretrained.download(f"{base}/missing-1234abcd.pth", tmp_path / "cache" / "missing-1234abcd.pth")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [name]  # no .partial left behind


def test_a_silent_server_fails_the_download_within_its_timeout(tmp_path, no_proxy):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/net-1234abcd.pth"
        started = time.perf_counter()
        with pytest.raises(pretrained.DownloadFailed, match="ReadTimeout"):
            pretrained.download(url, tmp_path / "net-1234abcd.pth", timeout=httpx.Timeout(0.5))
        assert time.perf_counter() - started < 3
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    import skimage.data

    return Image.fromarray(np.asarray(skimage.data.chelsea()))
