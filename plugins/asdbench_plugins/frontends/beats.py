"""``beats``: a BEATs checkpoint (microsoft/unilm ``BEATs_iter3``, ``BEATs_iter3_plus``...) as a frontend, frozen or
tuned (:mod:`asdbench_plugins.frontends.pretrained`); the network is :mod:`asdbench_plugins.encoders.beats`."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench_plugins.encoders.beats import SAMPLE_RATE, Beats, read_checkpoint
from asdbench_plugins.encoders.strict import load_strictly
from asdbench_plugins.frontends.pretrained import PretrainedEncoder, checkpoint_path, chosen_depth, files_sha256


class BeatsFrontend(PretrainedEncoder):
    """BEATs embeddings of the clip, of the output of ``layer`` layers (-1: all): the mean over its tokens
    (``pooling=mean``), each of the 8 frequency patches' mean over time (``time``, GenRep's), or per time patch of
    160 ms the mean over its frequency patches (``frames``)."""

    def __init__(self, sample_rate: int, checkpoint: str = "", layer: int = -1, pooling: str = "mean",
                 tune: str = "none", lora_rank: int = 8, lora_alpha: float = 16.0, lora_dropout: float = 0.0,
                 lora_targets: str = "q_proj,v_proj") -> None:
        path = checkpoint_path(checkpoint, "beats", "a BEATs checkpoint file, a dict of cfg and model")
        cfg, weights = read_checkpoint(path)
        encoder = Beats(cfg)
        load_strictly(encoder, weights, path)
        super().__init__("beats", sample_rate, SAMPLE_RATE, encoder, files_sha256([path]), tune, pooling,
                         lora_rank, lora_alpha, lora_dropout, lora_targets)
        self.depth = chosen_depth("beats", layer, cfg.encoder_layers)

    def tokens(self, wave: torch.Tensor) -> torch.Tensor:
        return self.encoder(wave, self.depth)

    def grid(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, count, width = tokens.shape
        bands = self.encoder.frequency_patches  # tokens are time-major
        return tokens.view(batch, count // bands, bands, width)


@hookimpl
def register_frontends(register):
    register("beats", BeatsFrontend, "a BEATs checkpoint (microsoft/unilm) from a local file, frozen or LoRA-tuned")
