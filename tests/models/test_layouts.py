"""Layouts of CAM layers (models/layouts.py) and the layers found at load (models/layers.py)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from service.models.layers import cam_layers
from service.models.layouts import Hints, Layout, infer, to_maps

pytest.importorskip("timm")
import timm  # noqa: E402


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(32, 8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
    return model.eval()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1, 64, 56, 56), Layout("nchw", 64, (56, 56))),
        ((1, 56, 56, 96), Layout("nhwc", 96, (56, 56))),
        ((1, 7, 7, 768), Layout("nhwc", 768, (7, 7))),
        ((1, 197, 768), Layout("tokens", 768, (14, 14), 1)),
        ((1, 198, 192), Layout("tokens", 192, (14, 14), 2)),
        ((1, 196, 192), Layout("tokens", 192, (14, 14), 0)),
    ],
)
def test_layouts_follow_from_the_shape_and_the_input_size(shape, expected):
    assert infer(nn.Identity(), shape, (224, 224)) == expected


def test_a_layout_that_cannot_be_told_is_refused_with_the_reason():
    assert "both (N, C, H, W) and (N, H, W, C)" in str(infer(nn.Identity(), (1, 56, 56, 56), (224, 224)))
    assert infer(nn.Conv2d(3, 56, 1), (1, 56, 56, 56), (224, 224)) == Layout("nchw", 56, (56, 56))  # a conv's
    assert "not a feature map" in str(infer(nn.Identity(), (1, 512, 1, 1), (224, 224)))
    assert "several patch grids: 1 + 2x2, 4 + 1x1" in str(infer(nn.Identity(), (1, 5, 8), (16, 16)))
    assert infer(nn.Identity(), (1, 5, 8), (16, 16), Hints(patch=8)) == Layout("tokens", 8, (2, 2), 1)
    assert infer(nn.Identity(), (1, 5, 8), (16, 16), Hints(prefix=4)) == Layout("tokens", 8, (1, 1), 4)


def test_tokens_drop_the_prefix_and_read_patches_row_by_row():
    tokens = torch.arange(2 * 7 * 3, dtype=torch.float32).view(2, 7, 3)  # 1 prefix + 2x3 patches, 3 channels
    maps = to_maps(tokens, Layout("tokens", 3, (2, 3), 1))
    assert maps.shape == (2, 3, 2, 3)
    assert torch.equal(maps[1, 2, 1, 0], tokens[1, 1 + 3, 2])  # patch (1, 0) is token 1 + 1 * 3
    nhwc = torch.randn(2, 4, 5, 3)
    assert torch.equal(to_maps(nhwc, Layout("nhwc", 3, (4, 5))), nhwc.permute(0, 3, 1, 2))


def test_a_vit_defaults_to_the_first_norm_of_its_last_block():
    table = cam_layers(tiny_vit(), torch.zeros(1, 3, 32, 32))
    assert table.default == "encoder.layers.encoder_layer_1.ln_1"  # after it only the class token goes on
    assert table.layouts[table.default] == Layout("tokens", 16, (4, 4), 1)
    assert table.layouts["conv_proj"].kind == "nchw"  # an embedding is a layer, never the default


def test_a_swin_defaults_to_its_last_block_read_channels_last():
    table = cam_layers(torchvision.models.swin_t(num_classes=3).eval(), torch.zeros(1, 3, 224, 224))
    assert table.default == "features.7.1"
    assert table.layouts["features.5"] == Layout("nhwc", 384, (14, 14))
    assert table.layouts["permute"] == Layout("nchw", 768, (7, 7))


def test_a_cnn_keeps_its_last_convolutional_stage():
    assert cam_layers(torchvision.models.resnet18().eval(), torch.zeros(1, 3, 64, 64)).default == "layer4"


@pytest.mark.parametrize(("name", "default", "prefix"), [("test_vit", "blocks.5.norm1", 1), ("test_convnext", None, 0)])
def test_timm_models(name, default, prefix):
    model = timm.create_model(name, num_classes=3).eval()
    table = cam_layers(model, torch.zeros(1, 3, 160, 160))
    if default is None:
        assert table.layouts[table.default].kind == "nchw"
    else:
        assert table.default == default and table.layouts[default].prefix == prefix
