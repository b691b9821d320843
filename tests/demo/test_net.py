import torch

from service.demo.net import CAM_LAYER, shapes_cnn


def test_factory_is_deterministic_and_leaves_the_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first, second = shapes_cnn(), shapes_cnn()
    assert torch.equal(torch.rand(1), expected)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_cam_layer_is_the_last_12x12_stage():
    model = shapes_cnn(num_classes=4).eval()
    layer = dict(model.named_modules())[CAM_LAYER]
    shapes = []

    def record(module, inputs, output) -> None:
        shapes.append(output.shape)

    layer.register_forward_hook(record)
    assert model(torch.zeros(2, 3, 96, 96)).shape == (2, 4)
    assert shapes == [(2, 64, 12, 12)]


def test_model_is_small():
    n_bytes = sum(t.numel() * t.element_size() for t in shapes_cnn().state_dict().values())
    assert n_bytes < 500_000
