"""``encoder-head``: the embedding a pretrained encoder's features give, pooled and optionally projected: the
backbone of the encoder systems (``beats-knn``, ``beats-lora``, ``ast-knn``)."""

from __future__ import annotations

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput
from asdbench.errors import AsdbenchError

POOLINGS = ("none", "mean", "attention-stats")


class EncoderHead(Backbone):
    """``pooling``: ``none`` takes one vector per clip ``(width,)`` as it is (an encoder frontend with
    ``pooling=mean``); ``mean`` and ``attention-stats`` pool per-frame vectors ``(frames, width)``, the latter by
    attentive statistics (Okabe et al., Interspeech 2018: a learned softmax weight per frame, then the weighted mean
    and standard deviation, ``2 x width``). ``projection`` > 0 adds a linear projection to that size; 0 keeps
    the pooled vector, so a frozen encoder with ``pooling=none`` has nothing to train."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, pooling: str = "none",
                 projection: int = 0, attention_dim: int = 128) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise AsdbenchError(f"backbone 'encoder-head': pooling={pooling!r} is not one of: {', '.join(POOLINGS)}")
        per_frame = len(input_shape) == 2
        if per_frame == (pooling == "none") or len(input_shape) not in (1, 2):
            raise AsdbenchError(f"backbone 'encoder-head': pooling={pooling} takes "
                                f"{'one vector per clip' if pooling == 'none' else 'one vector per frame'}, the "
                                f"frontend gives features of shape {tuple(input_shape)} (its pooling: mean or frames)")
        width = input_shape[-1]
        self.pooling = pooling
        if pooling == "attention-stats":
            self.attention = nn.Sequential(nn.Linear(width, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))
        pooled = 2 * width if pooling == "attention-stats" else width
        self.projection = nn.Linear(pooled, projection) if projection > 0 else nn.Identity()
        self.embedding_dim = projection or pooled

    def forward(self, features: torch.Tensor) -> ModelOutput:
        if self.pooling == "mean":
            features = features.mean(1)
        elif self.pooling == "attention-stats":
            weights = torch.softmax(self.attention(features), dim=1)  # (B, frames, 1)
            mean = (weights * features).sum(1)
            std = ((weights * features.square()).sum(1) - mean.square()).clamp(min=1e-8).sqrt()
            features = torch.cat([mean, std], dim=1)
        return ModelOutput(embedding=self.projection(features))


@hookimpl
def register_backbones(register):
    register("encoder-head", EncoderHead, "an encoder's features pooled (mean, attentive statistics) and "
             "optionally projected into the embedding")
