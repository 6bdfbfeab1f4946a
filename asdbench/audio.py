"""WAV input/output through soundfile, with errors that name the file."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asdbench.environment import require
from asdbench.errors import AsdbenchError, reason

# Subtypes an int16 store holds exactly; anything else is kept in float32.
EXACT_INT16 = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})
WAV_FORMATS = frozenset({"WAV", "WAVEX", "RF64"})
# DCASE 2026: first = the near microphone, second = the far one; both = the two, as a (2, samples) array;
# difference = near minus far (what the near microphone hears beyond the far one's noise)
CHANNEL_RULES = ("first", "second", "mean", "both", "difference")
SECOND_CHANNEL_RULES = frozenset({"second", "both", "difference"})  # the rules that need a second channel
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})  # the only samples that can be NaN or infinite
_TRUNCATED = re.compile(r"^data\s*:\s*\d+\s*\(should be \d+\)", re.MULTILINE)


def microphones(channel: str) -> int:
    """How many channels a clip read with the rule ``channel`` has: 2 for ``both``, else 1 (a mono array)."""
    return 2 if channel == "both" else 1


@dataclass(frozen=True)
class WavFormat:
    """What a WAV header says: enough to decide, before decoding anything, how the file will be read."""

    sample_rate: int
    channels: int
    subtype: str
    frames: int


def wav_format(path: Path, scan: bool = True) -> WavFormat:
    """The header of a WAV file; an error naming the file and the reason if it is not a whole, non-empty WAV.
    ``scan``: float files are read through, in blocks, for NaN and infinite samples (a run uses every sample; a
    scorer that reads only a recording's start checks those samples as it decodes them)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AsdbenchError(f"{path}: not a readable WAV file ({reason(exc, last=True)})") from None
    if info.format not in WAV_FORMATS:
        raise AsdbenchError(f"{path}: a {info.format} file, not WAV")
    if _TRUNCATED.search(info.extra_info):
        raise AsdbenchError(f"{path}: truncated (the header announces more samples than the file holds)")
    if info.frames == 0:
        raise AsdbenchError(f"{path}: the file holds no samples")
    if scan and info.subtype in FLOAT_SUBTYPES:  # a broken sensor writes NaN: found with the headers, before any training
        _check_finite(path, sum(int((~np.isfinite(block)).sum()) for block in sf.blocks(str(path), blocksize=1 << 18)))
    return WavFormat(info.samplerate, info.channels, info.subtype, info.frames)


def _check_finite(path: Path, nonfinite: int) -> None:
    if nonfinite:
        raise AsdbenchError(f"{path}: {nonfinite} samples are not finite (NaN or infinite): a broken recording")


def read_wav(path: Path, sample_rate: int, channel: str = "first", max_samples: int | None = None,
             start: float = 0.0, torch_free: bool = False) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate``, at the file's full precision (24-bit and float samples are not
    rounded; float samples beyond [-1, 1] are kept). A multi-channel file gives its first channel (as DCASE
    2020 did; DCASE 2026's near microphone), with ``channel="second"`` its second (2026's far microphone), with
    ``channel="mean"`` the mean of its channels, with ``channel="difference"`` the first minus the second (near
    minus far), or with ``channel="both"`` its first two as a ``(2, samples)`` array (time on the last axis, as
    everywhere); another sample rate is resampled
    (torchaudio's band-limited sinc interpolation).

    ``max_samples``: only the start of the file that gives this many samples (and one more, so that a longer file
    still shows as longer) is read, with a second more for the resampler's filter: an hour-long 48 kHz recording
    of six channels took 10 GB to score its first second when it was read whole. ``start``: seconds into the file
    where reading begins (a clip cut from a long recording). ``torch_free``: see :func:`resample`."""
    try:
        with sf.SoundFile(str(path)) as fh:
            rate, frames = fh.samplerate, fh.frames
            if start:
                frames -= fh.seek(min(frames, round(start * rate)))
            if max_samples is not None:
                frames = min(frames, math.ceil((max_samples + 1) * rate / sample_rate) + (rate if rate != sample_rate else 0))
            data = fh.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AsdbenchError(f"cannot read WAV {path}: {reason(exc, last=True)}") from None
    if data.shape[0] == 0:
        raise AsdbenchError(f"{path}: the file holds no samples" + (f" from {start:g} s on" if start else ""))
    wave = channel_signal(data, channel, path)
    if rate != sample_rate:
        wave = resample(wave, rate, sample_rate, torch_free)
    if max_samples is not None:
        wave = wave[..., : max_samples + 1]
    return np.ascontiguousarray(wave, dtype=np.float32)


def channel_signal(data: np.ndarray, channel: str, where: object) -> np.ndarray:
    """The signal the rule ``channel`` reads from ``(frames, channels)`` samples (see :func:`read_wav`); ``where``
    names the recording in errors. Non-finite samples are an error."""
    _check_finite(where, int((~np.isfinite(data)).sum()))
    if channel not in CHANNEL_RULES:
        raise AsdbenchError(f"channel={channel!r} is not one of: {', '.join(CHANNEL_RULES)}")
    if channel in SECOND_CHANNEL_RULES and data.shape[1] < 2:
        raise AsdbenchError(f"{where}: channel={channel} asks for a second channel, but the file has one")
    if channel == "both":
        return data[:, :2].T
    if channel == "difference":
        return data[:, 0] - data[:, 1]
    return data[:, 1] if channel == "second" else data[:, 0] if channel == "first" or data.shape[1] == 1 else \
        data.mean(axis=1)


class StreamResampler:
    """Resamples a signal that arrives in blocks as :func:`resample` resamples it whole.

    Each stretch is resampled with a tenth of a second of the signal on either side, which the output then drops:
    the sinc filter reaches a few milliseconds, so block edges leave no trace, and stretches start on multiples of
    the rates' reduced ratio, so output samples fall where a whole-signal resampling puts them. The price is the
    right-hand context: output lags input by a tenth of a second."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate, self.target = rate, target
        self.step = rate // math.gcd(rate, target)  # input samples per whole number of output samples
        self.margin = math.ceil(rate / 10 / self.step) * self.step
        self.pending: np.ndarray | None = None  # input not yet given out, after `context` samples already given
        self.context = 0

    def _out(self, samples: int) -> int:
        return samples * self.target // self.rate

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output for as much of the input so far as has its right-hand context (time on the last axis)."""
        if self.rate == self.target:
            return block
        self.pending = block if self.pending is None else np.concatenate([self.pending, block], axis=-1)
        ready = (self.pending.shape[-1] - self.context - self.margin) // self.step * self.step
        if ready <= 0:
            return self.pending[..., :0]
        segment = self.pending[..., : self.context + ready + self.margin]
        out = resample(segment, self.rate, self.target)[..., self._out(self.context): self._out(self.context + ready)]
        keep = max(0, self.context + ready - self.margin)
        self.pending, self.context = self.pending[..., keep:], self.context + ready - keep
        return out

    def flush(self) -> np.ndarray:
        """The rest of the output, once the input has ended."""
        if self.rate == self.target or self.pending is None or self.pending.shape[-1] <= self.context:
            return np.zeros(0, dtype=np.float32) if self.pending is None else self.pending[..., :0]
        out = resample(self.pending, self.rate, self.target)[..., self._out(self.context):]
        self.pending, self.context = None, 0
        return out


def resample(wave: np.ndarray, rate: int, target: int, torch_free: bool = False) -> np.ndarray:
    """``wave`` (time on the last axis, each channel alone) at ``target`` Hz: torchaudio's band-limited sinc
    interpolation where the reduced ratio is small
    (44.1 -> 16 kHz is 441/160), else (an odd rate, whose sinc kernel would need gigabytes) FFT resampling to
    ``ceil(len * target / rate)`` samples. ``torch_free``: SciPy's polyphase filter instead of torchaudio's (an
    exported model scores without torch; its resampled recordings differ from torch's by the filters' difference)."""
    g = math.gcd(rate, target)
    if torch_free:
        from scipy.signal import resample_poly

        return resample_poly(wave, target // g, rate // g, axis=-1).astype(np.float32)
    if max(rate, target) // g <= 1000:
        import torch

        functional = require("torchaudio.functional")  # only files at another rate pay for the import
        return functional.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, target).numpy()
    from scipy.signal import resample as fft_resample

    return fft_resample(wave, math.ceil(wave.shape[-1] * target / rate), axis=-1).astype(np.float32)


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM (``(samples,)`` or ``(samples, channels)``), written to a temporary name and renamed, so no
    half-written file is left."""
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
    length = wave.shape[-1]  # time is the last axis: (samples,) or (channels, samples)
    if length >= num_samples:
        return wave[..., :num_samples]
    if pad == "zeros" or length == 0:
        return np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, num_samples - length)])
    if pad == "repeat":
        return np.tile(wave, [1] * (wave.ndim - 1) + [-(-num_samples // length)])[..., :num_samples]
    raise ValueError(f"pad={pad!r} is not one of: {', '.join(PAD_MODES)}")
