"""WAV input/output through soundfile, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from asdbench.errors import AsdbenchError


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform in [-1, 1]; a multi-channel file keeps its first channel, as DCASE 2020 did."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AsdbenchError(f"cannot read WAV {path}: {exc}") from None
    if sr != sample_rate:
        raise AsdbenchError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz")
    if data.shape[0] == 0:
        raise AsdbenchError(f"{path}: the file holds no samples")
    return np.ascontiguousarray(data[:, 0])


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM, written to a temporary name and renamed, so no half-written file is left."""
    tmp = path.with_name(f".{path.name}.partial")
    sf.write(str(tmp), np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


PAD_MODES = ("repeat", "zeros")


def fit_length(wave: np.ndarray, num_samples: int, pad: str = "repeat") -> np.ndarray:
    """The first ``num_samples`` samples (as the STgram-MFN code cuts clips); a shorter clip is padded.

    ``repeat`` (the default) loops the clip until it is long enough: the padded part sounds like
    the machine. ``zeros`` appends digital silence, which a log-mel turns into frames at the
    floor of its scale (about -100 dB) that no recording has, and which models then learn.
    """
    if wave.shape[0] >= num_samples:
        return wave[:num_samples]
    if pad == "zeros" or wave.shape[0] == 0:
        return np.pad(wave, (0, num_samples - wave.shape[0]))
    if pad == "repeat":
        return np.tile(wave, -(-num_samples // wave.shape[0]))[:num_samples]
    raise ValueError(f"pad={pad!r} is not one of: {', '.join(PAD_MODES)}")
