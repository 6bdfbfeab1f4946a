"""``idnn``: the interpolation DNN (Suefusa et al., ICASSP 2020): predict a removed centre frame from its context."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput
from asdbench_plugins.backbones.dense_ae import dense_autoencoder


class InterpolationDNN(Backbone):
    """Dense encoder-decoder from the frames around a removed centre frame to that frame.

    Input: stacked frames (``frames`` x ``n_mels`` on the last axis, time-major, as
    ``logmel-frames`` gives them); the centre block is cut out as the target. Layer sizes
    follow the reimplementation the STgram-MFN authors used for their IDNN row (liuyoude
    AE-ASD: 4 x 128, 8-d bottleneck, 4 x 128, BatchNorm + ReLU); the IDNN paper's own sizes
    are not public in a form we could read.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, n_mels: int = 128, hidden: int = 128,
                 layers: int = 4, bottleneck: int = 8) -> None:
        super().__init__()
        dim = input_shape[-1]
        if dim % n_mels or (dim // n_mels) % 2 == 0:
            raise ValueError(f"idnn needs an odd number of stacked frames of {n_mels} bins, got {dim} values per vector")
        centre = (dim // n_mels) // 2
        self.centre = slice(centre * n_mels, (centre + 1) * n_mels)
        self.encoder, self.decoder = dense_autoencoder(dim - n_mels, n_mels, hidden, layers, bottleneck)
        self.embedding_dim = bottleneck

    def forward(self, features: torch.Tensor) -> ModelOutput:
        flat = features.reshape(-1, features.shape[-1])
        target = flat[:, self.centre]
        context = torch.cat((flat[:, : self.centre.start], flat[:, self.centre.stop :]), dim=1)
        code = self.encoder(context)
        lead = features.shape[:-1]
        return ModelOutput(
            embedding=code.reshape(*lead, -1),
            reconstruction=self.decoder(code).reshape(*lead, -1),
            target=target.reshape(*lead, -1),
        )


@hookimpl
def register_backbones(register):
    register("idnn", InterpolationDNN)
