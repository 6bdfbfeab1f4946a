"""``tgram`` (TgramNet, Table 1 of Liu et al. 2022) and ``stgram`` (log-mel and Tgram stacked)."""

from __future__ import annotations

import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Frontend
from asdbench_plugins.frontends.logmel import LogMel


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (and of TgramNet's padded conv): 313 for 160,000 samples at hop 512."""
    return num_samples // hop_length + 1


class TgramNet(Frontend):
    """TgramNet: Conv1d(1, M, k=W, s=H, p=W/2), then 3 x [LayerNorm, LeakyReLU(0.2), Conv1d(M, M, 3, 1, 1)].

    As the authors' code: no conv biases, and LayerNorm over the time axis of N frames
    (N = 313 for 10 s clips), which is why the frame count comes from the configured clip
    length. Output ``(B, 1, M, N)``, the same grid as the log-mel spectrogram.
    """

    def __init__(self, sample_rate: int, num_samples: int, n_mels: int = 128, win_length: int = 1024,
                 hop_length: int = 512, blocks: int = 3, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        frames = num_frames(num_samples, hop_length)
        self.conv_extractor = nn.Conv1d(1, n_mels, win_length, hop_length, win_length // 2, bias=False)
        self.conv_encoder = nn.Sequential(
            *[
                nn.Sequential(
                    nn.LayerNorm(frames),
                    nn.LeakyReLU(negative_slope, inplace=True),
                    nn.Conv1d(n_mels, n_mels, 3, 1, 1, bias=False),
                )
                for _ in range(blocks)
            ]
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.conv_extractor(wave.unsqueeze(1))
        return self.conv_encoder(x).unsqueeze(1)


class STgram(Frontend):
    """STgram: log-mel spectrogram and Tgram concatenated into 2 x M x N (Liu et al., ICASSP 2022).

    The log-mel branch is the authors' (torchaudio mel, 10·log10 with a 1e-10 floor,
    no normalisation) and has no weights; the Tgram branch trains with the classifier.
    """

    def __init__(self, sample_rate: int, num_samples: int, n_fft: int = 1024, hop_length: int = 512,
                 n_mels: int = 128) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.logmel = LogMel(sample_rate, num_samples, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        self.tgram = TgramNet(sample_rate, num_samples, n_mels=n_mels, win_length=n_fft, hop_length=hop_length)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.logmel(wave), self.tgram(wave)), dim=1)


@hookimpl
def register_frontends(register):
    register("tgram", TgramNet)
    register("stgram", STgram)
