import torch
from torch import nn
from torchvision.models import VisionTransformer

from service.demo.vit import LAYERS, WIDTH, shapes_vit

LAST_NORM = f"encoder.layers.encoder_layer_{LAYERS - 1}.ln_1"  # the service's default CAM layer for it


def test_factory_is_deterministic_and_leaves_the_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first, second = shapes_vit(), shapes_vit()
    assert torch.equal(torch.rand(1), expected)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_it_is_torchvisions_transformer_with_an_8x8_grid_and_a_class_token():
    model = shapes_vit(num_classes=4).eval()
    assert isinstance(model, VisionTransformer)
    assert sum(isinstance(m, nn.MultiheadAttention) for m in model.modules()) == LAYERS
    shapes = []
    model.get_submodule(LAST_NORM).register_forward_hook(lambda _m, _i, output: shapes.append(output.shape))
    assert model(torch.zeros(2, 3, 96, 96)).shape == (2, 4)
    assert shapes == [(2, 1 + 8 * 8, WIDTH)]


def test_the_classifier_does_not_start_at_zero():
    # torchvision's zero head would leave the blocks without gradient (see vit.py).
    assert shapes_vit().heads.head.weight.abs().sum() > 0


def test_model_is_small():
    n_bytes = sum(t.numel() * t.element_size() for t in shapes_vit().state_dict().values())
    assert n_bytes < 2_000_000  # 1.5 MB
