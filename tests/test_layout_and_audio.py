from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdbench.audio import fit_length, read_wav
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
    wrong_rate = tmp_path / "rate.wav"
    sf.write(str(wrong_rate), np.zeros(100), 44100, subtype="PCM_16")
    with pytest.raises(AsdbenchError, match=r"rate.wav: sample rate 44100 Hz, expected 16000 Hz"):
        read_wav(wrong_rate, 16000)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0), 16000, subtype="PCM_16")
    with pytest.raises(AsdbenchError, match="no samples"):
        read_wav(empty, 16000)


def test_read_wav_keeps_first_channel(tmp_path):
    path = tmp_path / "stereo.wav"
    data = np.stack([np.full(50, 0.5), np.full(50, -0.25)], axis=1)
    sf.write(str(path), data, 16000, subtype="PCM_16")
    wave = read_wav(path, 16000)
    assert wave.shape == (50,) and wave.dtype == np.float32
    assert np.allclose(wave, 0.5, atol=1e-4)


def test_fit_length_cuts_the_start_or_pads():
    x = np.arange(10, dtype=np.float32)
    assert fit_length(x, 4).tolist() == [0, 1, 2, 3]
    assert fit_length(x, 25).tolist() == list(range(10)) * 2 + [0, 1, 2, 3, 4]  # repeated as a loop
    assert fit_length(x, 12, "zeros").tolist() == list(range(10)) + [0, 0]
