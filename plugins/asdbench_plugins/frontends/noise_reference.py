"""``logmel-denoised``: the far microphone of DCASE 2026 as a noise reference for the near one."""

from __future__ import annotations

import torch

from asdbench import hookimpl
from asdbench_plugins.frontends.logmel import LogMel


class LogMelDenoised(LogMel):
    """Log-mel of the near microphone after spectral subtraction of the far one, 1 x n_mels x frames; no weights.

    Per mel bin and frame: ``max(near - alpha * far, floor * near)`` of the two mel power spectra (the far
    microphone hears relatively more of the room and less of the machine: what it hears is taken as the noise
    estimate), then the log-mel's dB scale. Reads both microphones at once (``dataset.channel=both``); the log-mel's
    own parameters (``n_fft``, ``n_mels``...) as ``logmel``'s."""

    microphones = 2

    def __init__(self, sample_rate: int, num_samples: int, alpha: float = 1.0, floor: float = 0.1, **logmel) -> None:
        super().__init__(sample_rate, num_samples, **logmel)
        if alpha < 0 or not 0 < floor <= 1:
            raise ValueError(f"alpha={alpha} must be 0 or more and floor={floor} in (0, 1]")
        self.alpha, self.floor = alpha, floor

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        near, far = self.mel(wave[:, 0]), self.mel(wave[:, 1])
        clean = torch.maximum(near - self.alpha * far, self.floor * near)
        return (self.db_scale * torch.log10(torch.clamp(clean + self.offset, min=self.amin))).unsqueeze(1)


@hookimpl
def register_frontends(register):
    register("logmel-denoised", LogMelDenoised)
