"""The demo vision transformer: torchvision's VisionTransformer with a convolutional stem, sized for the shapes.

The stem (conv-BN-ReLU, strides 1, 2, 2, 1, 3: 12 px patches, each token seeing 33 px) turns the 96x96 input
into an 8x8 grid of 64-wide tokens after the class token; 4 pre-norm blocks of 4 heads follow. It is
torchvision's class, so the service treats it as it treats `vit_b_16`: the default CAM layer is the last
block's first norm (`encoder.layers.encoder_layer_3.ln_1`) and the attention methods read its
`nn.MultiheadAttention` modules.

Why the stem (Xiao et al. 2021, "Early convolutions help transformers see better"; torchvision's
`conv_stem_configs`): only the outline tells the classes apart, and a plain 12 px (or 8 px) patch embedding
stayed at chance (loss ln 4) for 800-3,000 steps at learning rates from 1e-4 to 3e-3, with sin-cos position
embeddings and with mean-pooled tokens too, where the CNN is 96 % right after 300 steps.
"""

import torch
from torchvision.models import VisionTransformer
from torchvision.models.vision_transformer import ConvStemConfig

from .shapes import IMAGE_SIZE

PATCH_SIZE = 12  # the product of the stem's strides
STEM = (
    ConvStemConfig(16, 3, 1),
    ConvStemConfig(32, 3, 2),
    ConvStemConfig(64, 3, 2),
    ConvStemConfig(64, 5, 1),
    ConvStemConfig(64, 3, 3),
)
LAYERS = 4
HEADS = 4
WIDTH = 64
MLP_WIDTH = 4 * WIDTH


def shapes_vit(num_classes: int = 4) -> VisionTransformer:
    """The demo transformer; its initial weights are the same on every call and leave torch's RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VisionTransformer(
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            num_layers=LAYERS,
            num_heads=HEADS,
            hidden_dim=WIDTH,
            mlp_dim=MLP_WIDTH,
            num_classes=num_classes,
            conv_stem_configs=list(STEM),
        )
        # torchvision starts the classifier at zero, so no gradient reaches the blocks until it has grown: so
        # started, this network stayed at chance for 500 steps; with nn.Linear's own init it was 90 % right.
        model.heads.head.reset_parameters()
    return model
