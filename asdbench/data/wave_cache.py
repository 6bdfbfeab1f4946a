"""Decoded waveforms, cached on disk as memory maps so a WAV is decoded once across runs.

Stored as int16 where that is exact (16-bit PCM at the dataset's rate, half the memory of
float32), else as float32 (24-bit, float and resampled audio keep their precision).

The key covers what decoding depends on: the dataset plugin (its name, resolved parameters
and the code of its loader, :func:`asdbench.data.fingerprint.code_fingerprint`), the sample rate,
the clip length the clips are cut or padded to, the padding rule and the storage type, and each file's path,
size and modification time; change any of them and a new entry is written (atomically, see
:mod:`asdbench.data.array_cache`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np

from asdbench.api import Clip
from asdbench.audio import fit_length
from asdbench.cache import cache_dir
from asdbench.data.array_cache import load_or_fill, write_about

FORMAT_VERSION = 3
LENGTHS = "lengths.npy"


def cache_key(source: str, sample_rate: int, num_samples: int, pad: str, dtype: np.dtype, clips: tuple[Clip, ...]) -> str:
    """``source``: the dataset's fingerprint (what its ``load`` does)."""
    h = hashlib.sha256(json.dumps([FORMAT_VERSION, source, sample_rate, num_samples, pad, np.dtype(dtype).name]).encode())
    for clip in clips:
        stat = clip.path.stat()
        h.update(f"{clip.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def wave_shape(clips: int, microphones: int, num_samples: int) -> tuple[int, ...]:
    """The array of ``clips`` waves: a row per clip, a channel axis only where a clip has several."""
    return (clips, num_samples) if microphones == 1 else (clips, microphones, num_samples)


def decoded_length(clip: Clip, wave: np.ndarray) -> int:
    return wave.shape[-1]


def as_stored(wave: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float samples as the cache stores them: int16 rounded and clipped, float32 as they are."""
    return np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16) if dtype == np.int16 else wave


def decode_into(waves: np.ndarray, clips: tuple[Clip, ...], decode: Callable[[Clip], np.ndarray], pad: str,
                on_clip: Callable[[], None] = lambda: None,
                length_of: Callable[[Clip, np.ndarray], int] = decoded_length) -> np.ndarray:
    """Fill ``waves`` (int16 or float32, one row per clip: ``(samples,)`` or ``(channels, samples)``) with the clips
    cut or padded (``pad``) to its width;
    return their lengths (``length_of``: the decoded length, or the file's where only its start was decoded)."""
    lengths = np.zeros(len(clips), dtype=np.int64)
    for i, clip in enumerate(clips):
        wave = decode(clip)
        lengths[i] = length_of(clip, wave)
        fitted = fit_length(wave, waves.shape[-1], pad)
        waves[i] = as_stored(fitted, waves.dtype)
        on_clip()
    return lengths


def load_or_decode(
    source: str, sample_rate: int, num_samples: int, pad: str, dtype: np.dtype, clips: tuple[Clip, ...],
    decode: Callable[[Clip], np.ndarray], on_clip: Callable[[], None] = lambda: None,
    length_of: Callable[[Clip, np.ndarray], int] = decoded_length, dataset: str = "unknown", microphones: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``(waves, lengths)``: ``(clips, num_samples)`` of ``dtype`` (``(clips, microphones, num_samples)`` for clips
    of several) and each file's length before cutting; the entry is labelled with the ``dataset``'s name."""
    folder = cache_dir() / "waves" / cache_key(source, sample_rate, num_samples, pad, dtype, clips)

    def fill(waves: np.ndarray, entry) -> None:
        np.save(entry / LENGTHS, decode_into(waves, clips, decode, pad, on_clip, length_of))
        write_about(entry, dataset)

    waves = load_or_fill(folder, np.dtype(dtype), wave_shape(len(clips), microphones, num_samples), fill)
    return waves, np.load(folder / LENGTHS)
