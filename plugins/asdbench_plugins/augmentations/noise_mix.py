"""``noise-mix``: training clips mixed with recorded noise at random signal-to-noise ratios, the noise-aware
training of DCASE 2025-2026 (../shared/reference/dcase2026-and-official-ae.md §1.1): the far microphone of 2026,
the noise-only supplemental clips of 2025, or any folder of noise recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asdbench import hookimpl
from asdbench.api import Clip, Dataset
from asdbench.audio import fit_length, read_wav, wav_format
from asdbench.errors import AsdbenchError

NAMED_SOURCES = ("far", "supplemental")
MAX_NOISE_SECONDS = 60  # of a long noise recording, the start this long is read


class NoiseMix:
    """``copies`` noisy versions of each training clip join the clean ones: to each, a noise of ``source`` at an SNR
    drawn uniformly from [``snr_low``, ``snr_high``] dB (the noise scaled against the clip's RMS), from a random
    offset of the noise (repeated where shorter than the clip).

    ``source``: ``far`` (DCASE 2026: the far microphone, channel 1, of the model's training clips, a clip's noise
    drawn from any of them), ``supplemental`` (DCASE 2025: the noise-only clips of ``<type>/supplemental/``, those
    whose name holds ``noise``, of the model's machine types), or a folder of WAV files (read at the data set's
    rate, at most the first minute of each)."""

    stage = "waves"

    def __init__(self, dataset: Dataset, source: str = "far", copies: int = 1, snr_low: float = 0.0,
                 snr_high: float = 10.0) -> None:
        if copies < 1:
            raise ValueError(f"copies={copies} must be 1 or more")
        if not snr_low <= snr_high:
            raise ValueError(f"snr_low={snr_low} must not exceed snr_high={snr_high}")
        self.dataset, self.source, self.copies, self.snr = dataset, source, copies, (snr_low, snr_high)
        self._check_source()

    def _check_source(self) -> None:
        """Before anything trains: a source that cannot give noise is one line."""
        if self.source == "far":
            first = next(iter(self.dataset.clips("train")), None)
            if first is not None and wav_format(first.path, scan=False).channels < 2:
                raise AsdbenchError(f"noise-mix source=far reads the far microphone (channel 1) of two-channel clips "
                                    f"(DCASE 2026); {first.path} has one channel")
        elif self.source == "supplemental":
            if not self._supplemental(None):
                raise AsdbenchError("noise-mix source=supplemental: this data set has no supplemental noise clips "
                                    "(DCASE 2025: <type>/supplemental/ files whose name holds 'noise')")
        elif not Path(self.source).expanduser().is_dir():
            raise AsdbenchError(f"noise-mix source={self.source!r} is neither far, supplemental, nor a folder")
        elif not self._folder():
            raise AsdbenchError(f"noise-mix source={self.source}: no .wav files in this folder")

    def _supplemental(self, types: set[str] | None) -> list[Clip]:
        try:
            clips = self.dataset.clips("supplemental")
        except (KeyError, ValueError):
            return []
        return [c for c in clips if "noise" in c.name.lower() and (types is None or c.machine_type in types)]

    def _folder(self) -> list[Path]:
        return sorted(Path(self.source).expanduser().rglob("*.wav"))

    def _noises(self, clips: list[Clip], length: int) -> list[np.ndarray]:
        rate = self.dataset.sample_rate
        if self.source == "far":
            return [read_wav(c.path, rate, "second", max_samples=length) for c in clips]
        if self.source == "supplemental":
            found = self._supplemental({c.machine_type for c in clips})
            if not found:
                raise AsdbenchError(f"noise-mix source=supplemental: no supplemental noise clips of "
                                    f"{', '.join(sorted({c.machine_type for c in clips}))}")
            return [read_wav(c.path, rate, max_samples=MAX_NOISE_SECONDS * rate) for c in found]
        return [read_wav(p, rate, max_samples=MAX_NOISE_SECONDS * rate) for p in self._folder()]

    def __call__(self, waves: torch.Tensor, clips: list[Clip],
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = waves.shape[0], waves.shape[-1]
        noises = self._noises(clips, length)
        source = torch.arange(n).repeat(self.copies)
        picks = torch.randint(0, len(noises), (len(source),), generator=generator)
        starts = torch.rand(len(source), generator=generator)
        low, high = self.snr
        snr_db = low + (high - low) * torch.rand(len(source), generator=generator)
        noise = torch.from_numpy(np.stack([
            fit_length(noises[p][int(start * max(len(noises[p]) - length, 0)):], length, "repeat")
            for p, start in zip(picks.tolist(), starts.tolist())]))
        clean = waves[source].float()
        rms_clean = clean.flatten(1).pow(2).mean(dim=1).sqrt()
        rms_noise = noise.pow(2).mean(dim=1).sqrt()
        gain = torch.where(rms_noise > 0, rms_clean / rms_noise.clamp(min=1e-12) * 10 ** (-snr_db / 20), 0.0)
        noise = (gain[:, None] * noise).reshape(len(source), *([1] * (clean.dim() - 2)), length)
        return clean + noise, source  # clips of several microphones: the same noise on each


@hookimpl
def register_augmentations(register):
    register("noise-mix", NoiseMix, "noisy copies of the training clips: recorded noise (the 2026 far microphone, "
             "the 2025 supplemental noise clips or a folder) at random SNRs")
