"""Property test of the WAV path: any bytes, and odd but valid WAVs, either load as declared or raise
asdbench's own error, never anything else."""

import math
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asdbench.audio import read_wav, wav_format
from asdbench.errors import AsdbenchError

RATES = [1_000, 7_919, 8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000]  # 7919: a prime
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM"]


def _read(path: Path) -> np.ndarray | None:
    """What the dataset path does: the header check, then the decode; None for asdbench's own error."""
    try:
        wav_format(path)
        return read_wav(path, 16_000)
    except AsdbenchError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)  # one line, naming the file
        return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"RIFF\x00\x10\x00\x00WAVEfmt " + b)))
def test_random_bytes_load_or_raise_our_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.wav"
        path.write_bytes(data)
        wave = _read(path)
        assert wave is None or (wave.ndim == 1 and wave.dtype == np.float32)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.sampled_from(RATES), channels=st.integers(1, 4), subtype=st.sampled_from(SUBTYPES),
       frames=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_odd_valid_wavs_load_as_declared_or_raise_our_error(rate, channels, subtype, frames, seed):
    values = np.random.default_rng(seed).uniform(-0.9, 0.9, (frames, channels))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "odd.wav"
        try:
            sf.write(str(path), values, rate, subtype=subtype)
        except (sf.LibsndfileError, ValueError, RuntimeError):
            return  # a combination libsndfile itself cannot write: nothing to read
        wave = _read(path)
        written = sf.info(str(path)).frames
        if written == 0:
            assert wave is None  # an empty file is our error ("holds no samples")
            return
        assert wave is not None and wave.ndim == 1 and wave.dtype == np.float32 and np.isfinite(wave).all()
        assert len(wave) == (written if rate == 16_000 else math.ceil(written * 16_000 / rate))  # mono, at 16 kHz
