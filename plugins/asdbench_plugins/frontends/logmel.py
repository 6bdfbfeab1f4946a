"""Log-mel frontends: ``logmel`` (a 1 x M x N image) and ``logmel-frames`` (stacked context frames)."""

from __future__ import annotations

import torch
import torchaudio

from asdbench import hookimpl
from asdbench.api import Frontend, WindowedFrontend


class LogMel(Frontend):
    """Log-mel spectrogram (torchaudio) as a 1 x n_mels x frames image; no weights.

    ``db = 20/power * log10(max(mel + offset, amin))``. The defaults are the STgram-MFN
    code's (torchaudio ``MelSpectrogram`` + ``AmplitudeToDB``: 10·log10, 1e-10 floor, HTK
    mel scale, no filter normalisation, no top_db, reflect padding); the DCASE 2020 baseline uses
    librosa's Slaney mel scale and ``log10(mel + machine epsilon)``, one ``--set`` away.
    """

    def __init__(
        self,
        sample_rate: int,
        num_samples: int,
        n_fft: int = 1024,
        hop_length: int = 512,
        n_mels: int = 128,
        power: float = 2.0,
        mel_scale: str = "htk",
        norm: str = "",
        amin: float = 1e-10,
        offset: float = 0.0,
        pad_mode: str = "reflect",
        periodic_window: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            power=power,
            mel_scale=mel_scale,
            norm=norm or None,
            pad_mode=pad_mode,
            window_fn=torch.hann_window,
            wkwargs={"periodic": periodic_window},  # False: the symmetric Hann window of NumPy's np.hanning
        )
        self.db_scale = 20.0 / power
        self.amin = amin
        self.offset = offset

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B, n_mels, frames)``."""
        mel = self.mel(wave)
        return self.db_scale * torch.log10(torch.clamp(mel + self.offset, min=self.amin))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.log_mel(wave).unsqueeze(1)


class LogMelFrames(LogMel, WindowedFrontend):
    """Log-mel with consecutive frames stacked into vectors, as the DCASE 2020 baseline.

    ``(B, L) -> (B, vectors, frames * n_mels)``; vector ``v`` is frames ``v .. v+frames-1``
    concatenated in time order, and there are ``N - frames + 1`` vectors per clip. The runner caches
    the log-mel and stacks the frames of each batch (:class:`asdbench.api.WindowedFrontend`).
    """

    def __init__(self, sample_rate: int, num_samples: int, frames: int = 5, **kwargs) -> None:
        super().__init__(sample_rate, num_samples, **kwargs)
        self.frames = frames

    def base(self, wave: torch.Tensor) -> torch.Tensor:
        return self.log_mel(wave).transpose(1, 2).contiguous()  # (B, N, M): a window of frames is one block

    def window(self, frames: int) -> tuple[int, int]:
        return self.frames, 1

    def arrange(self, windows: torch.Tensor) -> torch.Tensor:
        return windows.reshape(windows.shape[0], -1)  # (K, frames, M) -> (K, frames * M), in time order

    forward = WindowedFrontend.forward


class LogMelPatches(LogMel, WindowedFrontend):
    """Log-mel cut into patches of consecutive frames, for classifiers that see a clip piece by piece.

    ``(B, L) -> (B, patches, 1, n_mels, patch_frames)`` with a patch every ``patch_hop``
    frames; a clip shorter than one patch gives one patch of all its frames.
    """

    def __init__(self, sample_rate: int, num_samples: int, patch_frames: int = 64, patch_hop: int = 8, **kwargs) -> None:
        super().__init__(sample_rate, num_samples, **kwargs)
        self.patch_frames, self.patch_hop = patch_frames, patch_hop

    def base(self, wave: torch.Tensor) -> torch.Tensor:
        return self.log_mel(wave).transpose(1, 2).contiguous()  # (B, N, M)

    def window(self, frames: int) -> tuple[int, int]:
        return min(self.patch_frames, frames), self.patch_hop

    def arrange(self, windows: torch.Tensor) -> torch.Tensor:
        return windows.transpose(1, 2).unsqueeze(1)  # (K, size, M) -> (K, 1, M, size)

    forward = WindowedFrontend.forward


@hookimpl
def register_frontends(register):
    register("logmel", LogMel)
    register("logmel-frames", LogMelFrames)
    register("logmel-patches", LogMelPatches)
