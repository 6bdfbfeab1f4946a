"""``logspec``: log power spectrogram on the linear frequency axis (Spec-MFN's input, Liu et al. 2022, Table 4)."""

from __future__ import annotations

import torch
import torchaudio

from asdbench import hookimpl
from asdbench.api import Frontend


class LogSpectrogram(Frontend):
    """Log power spectrogram without mel filtering, 1 x (n_fft/2 + 1) x frames; no weights.

    ``10·log10(max(|STFT|², 1e-10))``, the log-mel frontend's scale without the filter
    bank: 513 bins for n_fft = 1024, so the backbone must size itself from the input.
    """

    def __init__(self, sample_rate: int, num_samples: int, n_fft: int = 1024, hop_length: int = 512, amin: float = 1e-10) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop_length, power=2.0)
        self.amin = amin

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return (10.0 * torch.log10(torch.clamp(self.spec(wave), min=self.amin))).unsqueeze(1)


@hookimpl
def register_frontends(register):
    register("logspec", LogSpectrogram)
