"""``tastgram``: Tgram, log-mel and temporal-attention gram stacked 3 x M x N (Noisy-ArcMix, Choi et al., ICASSP 2024).

As the authors' net.py and dataloader (../shared/reference/methods-beyond.md, section 1): the log-mel branch uses a
2048-point FFT (Slaney mel scale and filter norm, zero padding, 10 log10(mel + float epsilon), no floor); TgramNet is
STgram-MFN's (1024-sample window); TAgram weighs each frame of the log-mel by sigmoid(max + mean over frequency) and
has no weights. Channel order [Tgram, log-mel, TAgram]. Under mixup the waveform feeding TgramNet and the log-mel are
mixed, each with the same weights, and TAgram is taken of the mixed log-mel, as the authors mix both inputs.
"""

from __future__ import annotations

import sys

import torch

from asdbench import hookimpl
from asdbench.api import Frontend, Mix
from asdbench_plugins.frontends.logmel import LogMel
from asdbench_plugins.frontends.tgram import TgramNet


def temporal_attention(logmel: torch.Tensor) -> torch.Tensor:
    """TAgram of a ``(B, 1, M, N)`` log-mel: each frame scaled by sigmoid(max_f + mean_f) of that frame."""
    weight = torch.sigmoid(logmel.amax(dim=2, keepdim=True) + logmel.mean(dim=2, keepdim=True))
    return weight * logmel


class TASTgram(Frontend):
    def __init__(self, sample_rate: int, num_samples: int, n_fft: int = 2048, hop_length: int = 512,
                 n_mels: int = 128, tgram_window: int = 1024) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.logmel = LogMel(sample_rate, num_samples, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                             mel_scale="slaney", norm="slaney", pad_mode="constant", amin=0.0,
                             offset=sys.float_info.epsilon)
        self.tgram = TgramNet(sample_rate, num_samples, n_mels=n_mels, win_length=tgram_window, hop_length=hop_length)

    @staticmethod
    def _stack(tgram: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
        return torch.cat((tgram, logmel, temporal_attention(logmel)), dim=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self._stack(self.tgram(wave), self.logmel(wave))

    def forward_mixed(self, wave: torch.Tensor, mix: Mix) -> torch.Tensor:
        return self._stack(self.tgram(mix.apply(wave)), mix.apply(self.logmel(wave)))


@hookimpl
def register_frontends(register):
    register("tastgram", TASTgram, "Tgram, log-mel and temporal-attention gram, 3 x 128 x frames (Noisy-ArcMix)")
