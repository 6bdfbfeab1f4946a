"""``mobilenetv2``: torchvision's MobileNetV2 (Sandler et al., CVPR 2018) as a machine-ID classifier's trunk."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput


class MobileNetV2(Backbone):
    """torchvision MobileNetV2 features + global average pooling -> embedding (1,280-d); no pretrained weights.

    The classification head lives in the loss (``cross-entropy``), as for MobileFaceNet.
    One-channel spectrogram patches are repeated to the three input channels, as the
    DCASE 2021 MobileNetV2 baseline feeds its Keras model.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width_mult: float = 0.5) -> None:
        super().__init__()
        self.features = mobilenet_v2(weights=None, width_mult=width_mult).features
        self.embedding_dim = self.features[-1].out_channels

    def forward(self, features: torch.Tensor) -> ModelOutput:
        x = features.expand(-1, 3, -1, -1) if features.shape[1] == 1 else features
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return ModelOutput(embedding=x)


@hookimpl
def register_backbones(register):
    register("mobilenetv2", MobileNetV2)
