"""The demo CNN: four conv-BN-ReLU blocks, global average pooling and a linear classifier.

Spatial sizes for a 96x96 input: block1 48, block2 24, block3 12, block4 12. `block4` is the last
convolutional stage (64 channels at 12x12) and the layer that CAM methods should use (`CAM_LAYER`).
"""

import torch
from torch import nn

CAM_LAYER = "block4"


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # No conv bias (BN has one), and a separate, non-inplace ReLU per use so that module hooks
    # (guided backprop, layer attributions) see each activation on its own.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class ShapesCNN(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.block1 = nn.Sequential(*_conv_bn_relu(3, 16), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*_conv_bn_relu(16, 32), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*_conv_bn_relu(32, 64), nn.MaxPool2d(2))
        self.block4 = nn.Sequential(*_conv_bn_relu(64, 64), *_conv_bn_relu(64, 64))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.fc(self.flatten(self.pool(x)))


def shapes_cnn(num_classes: int = 4) -> ShapesCNN:
    """The demo architecture; its initial weights are the same on every call and leave torch's RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ShapesCNN(num_classes)
