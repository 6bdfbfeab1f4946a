from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdbench.audio import WavFormat, fit_length, read_wav, wav_format
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020_layout import clip_name, parse_clip, scan_tree


@pytest.mark.parametrize(
    "name,split,expected",
    [
        ("normal_id_01_00000999.wav", "train", ("01", 0)),
        ("normal_id_00_00000349.wav", "test", ("00", 0)),
        ("anomaly_id_04_00000263.wav", "test", ("04", 1)),
        ("id_05_00000514.wav", "test", ("05", None)),
        ("anomaly_id_04_00000263.wav", "train", None),  # training data is normal only
        ("id_05_00000514.wav", "train", None),
        ("normal_id_1_00000000.wav", "train", None),
        ("normal_id_01_0000000.wav", "train", None),
        ("normal_id_01_00000000.flac", "train", None),
    ],
)
def test_parse_official_names(name, split, expected):
    clip = parse_clip(Path("ToyCar", split, name), "ToyCar", split)
    assert (None if clip is None else (clip.machine_id, clip.label)) == expected


def test_clip_name_is_the_official_pattern():
    assert clip_name(0, "02", 7) == "normal_id_02_00000007.wav"
    assert clip_name(1, "06", 123) == "anomaly_id_06_00000123.wav"


def test_scan_reports_misfits(tmp_path):
    for rel in ("fan/train/normal_id_00_00000000.wav", "fan/test/anomaly_id_00_00000000.wav", "fan/test/readme.txt", "fan/train/x.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    scan = scan_tree(tmp_path)
    assert [c.name for c in scan.clips["train"]] == ["normal_id_00_00000000.wav"]
    assert [c.label for c in scan.clips["test"]] == [1]
    assert sorted(p.name for p in scan.misfits) == ["readme.txt", "x.wav"]


def test_read_wav_errors_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....not a wav")
    with pytest.raises(AsdbenchError, match="cannot read WAV .*corrupt.wav"):
        read_wav(corrupt, 16000)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0), 16000, subtype="PCM_16")
    with pytest.raises(AsdbenchError, match="no samples"):
        read_wav(empty, 16000)


def test_another_sample_rate_is_resampled(tmp_path):
    path = tmp_path / "rate.wav"
    t = np.arange(4410) / 44100
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 1000 * t), 44100, subtype="PCM_16")
    wave = read_wav(path, 16000)
    assert wave.shape == (1600,) and wave.dtype == np.float32  # 0.1 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) * 16000 / 1600 == 1000.0  # the same tone
    assert np.sqrt(np.mean(wave[200:-200] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_read_wav_keeps_first_channel_or_averages(tmp_path):
    path = tmp_path / "stereo.wav"
    data = np.stack([np.full(50, 0.5), np.full(50, -0.25)], axis=1)
    sf.write(str(path), data, 16000, subtype="PCM_16")
    wave = read_wav(path, 16000)
    assert wave.shape == (50,) and wave.dtype == np.float32
    assert np.allclose(wave, 0.5, atol=1e-4)
    assert np.allclose(read_wav(path, 16000, "mean"), 0.125, atol=1e-4)


def test_both_channels_come_as_rows_cut_padded_and_resampled_together(tmp_path):
    """channel=both: (2, samples), near then far, time on the last axis everywhere the wave goes."""
    path = tmp_path / "stereo.wav"
    near, far = np.linspace(-0.5, 0.5, 300), np.linspace(0.25, -0.25, 300)
    sf.write(str(path), np.stack([near, far, near], axis=1), 16000, subtype="FLOAT")  # a third channel is not read
    both = read_wav(path, 16000, "both")
    assert both.shape == (2, 300) and np.allclose(both, np.stack([near, far]), atol=1e-7)
    assert read_wav(path, 16000, "both", max_samples=100).shape == (2, 101)
    assert np.array_equal(fit_length(both, 700), np.concatenate([both, both, both[:, :100]], axis=1))
    assert np.array_equal(fit_length(both, 500, "zeros")[:, 300:], np.zeros((2, 200)))
    assert np.array_equal(fit_length(both, 200), both[:, :200])
    assert np.allclose(read_wav(path, 16000, "difference"), near - far, atol=1e-7)  # what near hears beyond far
    resampled = read_wav(path, 8000, "both")
    assert resampled.shape == (2, 150)
    assert np.allclose(resampled[1], read_wav(path, 8000, "second"), atol=1e-6)
    mono = tmp_path / "mono.wav"
    sf.write(str(mono), near, 16000)
    for rule in ("both", "difference"):
        with pytest.raises(AsdbenchError, match=f"channel={rule} asks for a second channel, but the file has one"):
            read_wav(mono, 16000, rule)


@pytest.mark.parametrize("subtype,values", [
    ("PCM_24", np.array([1, -1, 2**22 + 3, -(2**23)]) / 2**23),  # 24-bit steps, below int16 resolution
    ("PCM_32", np.array([1, -7, 2**30 + 5, -(2**31)]) / 2**31),
    ("FLOAT", np.array([1.5, -2.0, 1e-6, 0.25])),  # float WAVs may exceed [-1, 1]: kept, not clipped
])
def test_high_resolution_wavs_are_read_at_full_precision(tmp_path, subtype, values):
    path = tmp_path / f"{subtype}.wav"
    sf.write(str(path), values, 16000, subtype=subtype)
    np.testing.assert_allclose(read_wav(path, 16000), values.astype(np.float32), rtol=0, atol=1e-9)
    assert wav_format(path) == WavFormat(16000, 1, subtype, 4)


def test_wav_format_refuses_truncated_empty_and_other_files(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), np.zeros(1000), 16000, subtype="PCM_16")
    (tmp_path / "truncated.wav").write_bytes(whole.read_bytes()[:1000])
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "header.wav").write_bytes(whole.read_bytes()[:44])  # the header of 1000 samples, and none of them
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0), 16000, subtype="PCM_16")
    sf.write(str(tmp_path / "flac.wav"), np.zeros(1000), 16000, format="FLAC")
    for name, reason in (("truncated.wav", "truncated"), ("zero.wav", "not a readable WAV file"),
                         ("header.wav", "truncated"), ("empty.wav", "the file holds no samples"),
                         ("flac.wav", "a FLAC file, not WAV")):
        with pytest.raises(AsdbenchError, match=rf"{name}: {reason}"):
            wav_format(tmp_path / name)


def test_fit_length_cuts_the_start_or_pads():
    x = np.arange(10, dtype=np.float32)
    assert fit_length(x, 4).tolist() == [0, 1, 2, 3]
    assert fit_length(x, 25).tolist() == list(range(10)) * 2 + [0, 1, 2, 3, 4]  # repeated as a loop
    assert fit_length(x, 12, "zeros").tolist() == list(range(10)) + [0, 0]
