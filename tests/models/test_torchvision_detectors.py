"""torchvision's single-stage detectors (RetinaNet, FCOS, SSDlite) served from a models TOML with seeded
random weights, over HTTP: predictions equal the torchvision model called directly, every reported box gets
its own finite, non-zero Grad-CAM and gradient map, and the default CAM layer is one every box depends on.

Random weights need three nudges to report boxes these checks can tell apart, all in the saved state_dict
(the service builds each model from its TOML as it would any other):
- RetinaNet and FCOS start their class logits at the prior bias log(0.01 / 0.99): every score is about
  0.01, under the 0.05 (RetinaNet) and 0.2 (FCOS) that torchvision keeps, so nothing would be reported.
  A bias of 0 gives scores near 0.5.
- FCOS ReLUs its box offsets: random weights zero about half of them, and a zero-area box's IoU with itself
  is 0/0, so its affinity and every map of it would be 0. A bias of 1 gives each box its anchor's size.
- A randomly initialised MobileNetV3 with a reduced tail shrinks its activations block by block (about
  1e-14 at SSDlite's heads): every class logit is 0 and every score exactly 1/5, all tied. BatchNorm
  statistics measured on a few pictures keep the activations at unit scale.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from api.conftest import LIMITS, encode, saliency_array, write_config
from fastapi.testclient import TestClient
from torch import nn

from service.main import create_app
from service.models.detection import builder_kwargs
from service.settings import Settings

LABELS = ["__background__", "circle", "square", "triangle", "star"]  # index 0: torchvision's background
SHOWN = 3  # max_detections: the boxes reported, and explained, per image


@dataclass(frozen=True)
class Architecture:
    name: str
    size: tuple[int, int]  # the input size: the transform's working size, so no resize inside the model
    layer: str  # the default CAM layer


ARCHITECTURES = [
    Architecture("retinanet_resnet50_fpn", (128, 128), "backbone.body.layer4"),
    Architecture("fcos_resnet50_fpn", (128, 128), "backbone.body.layer4"),
    # Its transform resizes to a fixed 320 x 320 whatever builder_kwargs says: 320 is the size with no resize.
    # The default layer outputs the first (20 x 20) level, which every later level is computed from.
    Architecture("ssdlite320_mobilenet_v3_large", (320, 320), "backbone.features.0"),
]


def pixels(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 smooth blobs: the detectors find boxes of several classes and places in them."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, 8, 8), generator=g)
    smooth = nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (smooth[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def as_input(image: np.ndarray) -> torch.Tensor:
    """What the service feeds a detector: pixels in [0, 1], (1, 3, H, W)."""
    return torch.from_numpy(image.copy()).permute(2, 0, 1).float()[None] / 255


def detector(arch: Architecture, seed: int = 0) -> nn.Module:
    """The model the service builds for `arch`'s TOML entry, with the nudged random weights it is served with."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(
            arch.name, weights=None, num_classes=len(LABELS), **builder_kwargs(arch.name, arch.size)
        )
    with torch.no_grad():
        if arch.name.startswith(("retinanet", "fcos")):
            model.head.classification_head.cls_logits.bias.zero_()
        if arch.name.startswith("fcos"):
            model.head.regression_head.bbox_reg.bias.fill_(1.0)
        if arch.name.startswith("ssdlite"):
            norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None  # a plain mean over the pictures
                norm.train()
            batch = torch.cat([as_input(pixels(arch.size, other)) for other in range(1, 5)])
            model.backbone(model.transform(list(batch))[0].tensors)
    return model.eval()


@dataclass(frozen=True)
class Served:
    arch: Architecture
    client: TestClient
    image: np.ndarray
    b64: str


@pytest.fixture(scope="module", params=ARCHITECTURES, ids=lambda arch: arch.name)
def served(request, tmp_path_factory):
    arch: Architecture = request.param
    folder: Path = tmp_path_factory.mktemp(arch.name)
    torch.save(detector(arch).state_dict(), folder / "weights.pt")
    (folder / "labels.txt").write_text("\n".join(LABELS))
    entry = {"name": "det", "kind": "detection", "architecture": f"torchvision:{arch.name}",
             "num_classes": len(LABELS), "input_size": list(arch.size), "min_score": 0.0, "max_detections": SHOWN,
             "weights": "weights.pt", "labels": "labels.txt"}  # fmt: skip
    config = write_config(folder, "models.toml", entry)
    image = pixels(arch.size)  # the input size exactly: no letterbox, boxes are the detector's own
    b64 = base64.b64encode(encode(image, "PNG")).decode("ascii")
    with TestClient(create_app(Settings(config=config, **LIMITS))) as client:
        yield Served(arch, client, image, b64)


def post(served: Served, path: str, body: dict) -> dict:
    response = served.client.post(f"/v1/models/det/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_predictions_are_the_torchvision_models_own(served):
    (result,) = post(served, "predict", {"images": [served.b64]})["results"]
    with torch.no_grad():
        (found,) = detector(served.arch)(list(as_input(served.image)))
    order = found["scores"].argsort(descending=True, stable=True)[:SHOWN]
    got = result["detections"]
    assert len(got) == SHOWN
    assert [(d["index"], d["label"]) for d in got] == [(int(i), LABELS[i]) for i in found["labels"][order]]
    np.testing.assert_allclose([d["box"] for d in got], found["boxes"][order].numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose([d["score"] for d in got], found["scores"][order].numpy(), rtol=0, atol=1e-6)
    assert len({(d["index"], *d["box"]) for d in got}) > 1  # boxes to tell apart in the maps


@pytest.mark.parametrize("method", ["gradcam", "gradient"])
def test_every_box_gets_its_own_finite_map(served, method):
    body = {"images": [served.b64], "method": method, "output": {"saliency": "float32"}}
    (result,) = post(served, "explain", body)["results"]
    predicted = post(served, "predict", {"images": [served.b64]})["results"][0]["detections"]
    assert [(d["index"], d["box"]) for d in result["detections"]] == [(d["index"], d["box"]) for d in predicted]
    maps = []
    for detection in result["detections"]:
        (explanation,) = detection["explanations"]
        values = saliency_array(explanation["saliency"])
        assert values.shape == served.arch.size and np.isfinite(values).all()
        assert values.max() > 0  # zero everywhere: the box does not depend on the layer (or the input) at all
        maps.append(values)
    if method == "gradcam":
        boxes = [(d["index"], *d["box"]) for d in result["detections"]]
        for i in range(len(maps)):
            for j in range(i):
                if boxes[i] != boxes[j]:  # another class or place: another map
                    assert not np.array_equal(maps[i], maps[j]), (boxes[i], boxes[j])


def test_the_default_cam_layer_is_in_the_backbone(served):
    body = {"images": [served.b64], "method": "gradcam", "output": {"saliency": "float32"}}
    (result,) = post(served, "explain", body)["results"]
    echoed = {d["explanations"][0]["method"]["layer"] for d in result["detections"]}
    info = served.client.get("/v1/models/det").json()
    assert echoed == {info["default_layer"]} == {served.arch.layer}
    assert served.arch.layer.startswith("backbone.")
