"""The demo object detector: torchvision's FCOS on a small CNN, for 128x128 shapes scenes (scenes.py).

Why it is built this way:
- FCOS is anchor-free and single-stage: one dense head, no proposal stage and no RoI pooling, so a forward
  pass costs little more than its convolutions, and the service gets torchvision's detection contract
  (eval mode: a list of dicts with `boxes`, `labels`, `scores`) unchanged.
- Its score, sqrt(sigmoid(class logit) * sigmoid(centerness)), is a smooth function of the pixels, so
  the service can backpropagate a box's score to the input.
- One feature map at stride 8 (16x16 for 128 px) is enough: the shapes are 14-40 px across, so every one is
  at least two cells wide, and with a single level FCOS's per-level size ranges do not apply (no FPN
  needed). `backbone.body.stage4` is that map and the layer Grad-CAM should use (`CAM_LAYER`).
- The body is four conv-BN-ReLU stages like the demo classifier's (service/demo/net.py) and the head has
  two convolutions per branch instead of four: 0.3M parameters in all, and about 30 ms for 16 images on
  two CPU cores.
- The model takes pixels in [0, 1]; the transform normalizes with shapes.py's mean and std and keeps the
  128 px size (min_size = max_size = 128), so boxes come back in input pixels.
"""

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead

from service.demo.shapes import MEAN, STD

CAM_LAYER = "backbone.body.stage4"
IMAGE_SIZE = 128
STRIDE = 8
CHANNELS = 64


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    # A separate, non-inplace ReLU per use, so that module hooks see each activation on its own.
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class Backbone(nn.Module):
    """Strides 2, 4, 8, 8; the last stage widens the receptive field to about 70 px at stride 8."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            OrderedDict(
                stage1=nn.Sequential(*_conv_bn_relu(3, 16, stride=2)),
                stage2=nn.Sequential(*_conv_bn_relu(16, 32, stride=2), *_conv_bn_relu(32, 32)),
                stage3=nn.Sequential(*_conv_bn_relu(32, 64, stride=2), *_conv_bn_relu(64, 64)),
                stage4=nn.Sequential(*_conv_bn_relu(64, CHANNELS), *_conv_bn_relu(CHANNELS, CHANNELS)),
            )
        )
        self.out_channels = CHANNELS  # FCOS reads it

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return OrderedDict(stride8=self.body(x))


def shapes_detector(num_classes: int = 5) -> FCOS:
    """The demo detector (`num_classes` counts the background, label 0); the same initial weights on every
    call, and torch's RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return FCOS(
            Backbone(),
            num_classes=num_classes,
            min_size=IMAGE_SIZE,
            max_size=IMAGE_SIZE,
            image_mean=list(MEAN),
            image_std=list(STD),
            anchor_generator=AnchorGenerator(((STRIDE,),), ((1.0,),)),
            head=FCOSHead(CHANNELS, num_anchors=1, num_classes=num_classes, num_convs=2),
            score_thresh=0.05,
            detections_per_img=100,
        )
