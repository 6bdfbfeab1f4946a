"""``tfgram``: log-mel, Tgram and TFgram stacked 3 x M x N (OS-SCL, Huang et al., ICASSP 2025).

As the authors' net.py and waveq.py (huangswt/OS-SCL@9aca394; ../shared/reference/methods-beyond.md, section 2.2):
the log-mel branch as Noisy-ArcMix's (2048-point FFT, Slaney mel, zero padding) with torchaudio's AmplitudeToDB
(10 log10, 1e-10 floor); TgramNet as STgram-MFN's; TFgram, a wavegram front end on the raw waveform:
Conv1d(1, 64, 11, stride 5) -> BN -> ReLU, then three blocks of [Conv1d k3 -> BN -> ReLU -> Conv1d k3 dilation 2
-> BN -> ReLU] (64, 128, 128 channels; no biases) followed by max pooling by 4, to 626, and to N frames. Channel order
[log-mel, Tgram, TFgram]. The authors' module also builds a PANNs CNN14 tail it never uses (79.8 M parameters that
get no gradient); it is not built here. Under mixup the waveform and the log-mel are mixed, as the authors mix both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from asdbench import hookimpl
from asdbench.api import Frontend, Mix
from asdbench_plugins.frontends.logmel import LogMel
from asdbench_plugins.frontends.tgram import TgramNet, num_frames


class _Block(nn.Module):
    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv1d(inp, out, 3, padding=1, bias=False), nn.BatchNorm1d(out), nn.ReLU(),
            nn.Conv1d(out, out, 3, padding=2, dilation=2, bias=False), nn.BatchNorm1d(out), nn.ReLU())
        for m in self.layers:
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def adaptive_max_pool1d(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.adaptive_max_pool1d``; under ``torch.export`` (ONNX export), which has no translation of it for lengths
    that ``size`` does not divide, the same maxima over the same windows (``floor(i L / size)`` to
    ``ceil((i + 1) L / size)``) gathered by a constant index, each window's last sample repeated to the widest."""
    if not torch.compiler.is_exporting():
        return F.adaptive_max_pool1d(x, size)
    length = x.shape[-1]
    bounds = [((i * length) // size, -(-(i + 1) * length // size)) for i in range(size)]
    width = max(end - start for start, end in bounds)
    index = torch.tensor([[min(start + k, end - 1) for k in range(width)] for start, end in bounds], device=x.device)
    return x[..., index].amax(dim=-1)


class TFgramNet(nn.Module):
    """Raw waveform ``(B, L)`` to ``(B, 1, 128, N)``."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.pre = nn.Sequential(nn.Conv1d(1, 64, 11, stride=5, padding=5, bias=False), nn.BatchNorm1d(64), nn.ReLU())
        nn.init.xavier_uniform_(self.pre[0].weight)
        self.block1, self.block2, self.block3 = _Block(64, 64), _Block(64, 128), _Block(128, 128)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(self.block1(self.pre(wave.unsqueeze(1))), 4)
        x = adaptive_max_pool1d(self.block2(x), 2 * self.frames)
        return adaptive_max_pool1d(self.block3(x), self.frames).unsqueeze(1)


class TFgram(Frontend):
    def __init__(self, sample_rate: int, num_samples: int, n_fft: int = 2048, hop_length: int = 512,
                 n_mels: int = 128, tgram_window: int = 1024) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.logmel = LogMel(sample_rate, num_samples, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                             mel_scale="slaney", norm="slaney", pad_mode="constant")
        self.tgram = TgramNet(sample_rate, num_samples, n_mels=n_mels, win_length=tgram_window, hop_length=hop_length)
        self.tfgram = TFgramNet(num_frames(num_samples, hop_length))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.logmel(wave), self.tgram(wave), self.tfgram(wave)), dim=1)

    def forward_mixed(self, wave: torch.Tensor, mix: Mix) -> torch.Tensor:
        mixed = mix.apply(wave)
        return torch.cat((mix.apply(self.logmel(wave)), self.tgram(mixed), self.tfgram(mixed)), dim=1)


@hookimpl
def register_frontends(register):
    register("tfgram", TFgram, "log-mel, Tgram and TFgram (a wavegram), 3 x 128 x frames (OS-SCL)")
