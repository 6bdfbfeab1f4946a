import hashlib

import numpy as np
import pytest
import soundfile as sf

from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020_layout import LABELLED
from asdbench_plugins.datasets.machine_sounds import SAMPLE_RATE, machine_clip, render
from asdbench_plugins.datasets.synthetic import SIZES, SyntheticDataset, generate


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.wav")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_and_seed_dependent(tmp_path):
    a = generate(tmp_path / "a", "tiny", seed=1)
    b = generate(tmp_path / "b", "tiny", seed=1)
    c = generate(tmp_path / "c", "tiny", seed=2)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_layout_names_and_format(tmp_path):
    root = generate(tmp_path / "t", "tiny", seed=0)
    spec = SIZES["tiny"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(spec.types)
    for mtype in spec.types:
        train = sorted(p.name for p in (root / mtype / "train").iterdir())
        test = sorted(p.name for p in (root / mtype / "test").iterdir())
        assert len(train) == len(spec.ids) * spec.train
        assert len(test) == len(spec.ids) * (spec.test_normal + spec.test_anomaly)
        assert all(n.startswith("normal_id_") for n in train)
        assert all(LABELLED.match(n) for n in train + test)
        assert "anomaly_id_02_00000005.wav" in test and "normal_id_00_00000009.wav" in train
    info = sf.info(str(root / "fan" / "train" / "normal_id_00_00000000.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.frames == int(spec.seconds * SAMPLE_RATE)


def test_refuses_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AsdbenchError, match="not empty"):
        generate(tmp_path / "x", "tiny")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def _spectrum(wave):
    return np.log(np.abs(np.fft.rfft(wave))[: len(wave) // 2] + 1e-6)


def test_ids_differ_more_than_runs_of_one_id():
    """Different machine IDs are further apart than two runs of the same machine."""
    same = [np.corrcoef(_spectrum(machine_clip(0, "fan", 0, i, 1.0, False, 0)), _spectrum(machine_clip(0, "fan", 0, i + 1, 1.0, False, 0)))[0, 1] for i in range(3)]
    other = [np.corrcoef(_spectrum(machine_clip(0, "fan", 0, i, 1.0, False, 0)), _spectrum(machine_clip(0, "fan", 2, i, 1.0, False, 0)))[0, 1] for i in range(3)]
    assert min(same) > max(other)


def _band_energy(wave, lo, hi):
    p = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)
    return p[(f >= lo) & (f < hi)].sum()


@pytest.mark.parametrize("mtype,kind", [("fan", "hf_whine"), ("pump", "hf_friction"), ("valve", "hf_whine")])
def test_high_frequency_defects_add_energy_mainly_above_4khz(mtype, kind):
    """The same run of the machine, healthy and with the defect: what the defect adds lies above 4 kHz."""
    healthy = render(0, mtype, 0, 3, 1.0, stream=3).astype(np.float64)
    faulty = render(0, mtype, 0, 3, 1.0, stream=3, kind=kind, severity=1.0).astype(np.float64)
    ratio = np.sqrt(_band_energy(healthy, 0, 4000) / _band_energy(faulty, 0, 4000))  # undo the peak normalisation
    added = faulty * ratio - healthy
    assert _band_energy(added, 4000, 8000) > 0.9 * _band_energy(added, 0, 8000)
    assert _band_energy(added, 4000, 8000) > 0.1 * _band_energy(healthy, 4000, 8000)


def test_anomalies_come_in_several_kinds_and_severities():
    from asdbench_plugins.datasets.machine_sounds import ANOMALY_KINDS

    assert all(len(set(kinds)) >= 4 for kinds in ANOMALY_KINDS.values())
    mild = render(0, "fan", 0, 1, 1.0, stream=3, kind="speed_shift", severity=0.15)
    strong = render(0, "fan", 0, 1, 1.0, stream=3, kind="speed_shift", severity=1.0)
    healthy = render(0, "fan", 0, 1, 1.0, stream=3)
    assert np.abs(_spectrum(mild) - _spectrum(healthy)).mean() < np.abs(_spectrum(strong) - _spectrum(healthy)).mean()


def test_dataset_plugin_generates_once_and_reads_the_tree():
    ds = SyntheticDataset(size="tiny")
    again = SyntheticDataset(size="tiny")
    assert ds.root == again.root and (ds.root / "MANIFEST.json").exists()
    train, test = ds.clips("train"), ds.clips("test")
    assert {c.label for c in train} == {0} and {c.label for c in test} == {0, 1}
    assert {(c.machine_type, c.machine_id) for c in train} == {("fan", "00"), ("fan", "02"), ("valve", "00"), ("valve", "02")}
    wave = ds.load(train[0])
    assert wave.dtype == np.float32 and wave.shape == (16000,)


def test_dataset_root_without_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(AsdbenchError, match="asdbench data synth"):
        SyntheticDataset(size="tiny", root=str(tmp_path))


def test_data_synth_command_writes_the_tree(tmp_path):
    from click.testing import CliRunner

    from asdbench.cli import cli

    out = tmp_path / "synth"
    result = CliRunner().invoke(cli, ["data", "synth", "--out", str(out), "--size", "tiny", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (out / "MANIFEST.json").exists() and len(list(out.rglob("*.wav"))) == 2 * 2 * (10 + 6 + 6)
    ds = SyntheticDataset(size="tiny", seed=3, root=str(out))
    assert len(ds.clips("train")) == 40 and ds.clip_seconds == 1.0
    # Read as another size (which sets the clip length) or seed, the tree is refused with the --set that fixes it.
    with pytest.raises(AsdbenchError, match=r"size 'tiny', seed 3 \(its MANIFEST.json\).*--set dataset.size=tiny --set dataset.seed=3$"):
        SyntheticDataset(root=str(out))
    again = CliRunner().invoke(cli, ["data", "synth", "--out", str(out), "--size", "tiny"])
    assert again.exit_code == 1 and "not empty" in again.output
    # --root alone reads the tree as its manifest states it (it used to ask for --set dataset.size=tiny first), and
    # the config shown (and logged) says so; a size set by hand that disagrees is still refused.
    shown = CliRunner().invoke(cli, ["config", "show", "dcase-ae", "--root", str(out)])
    assert shown.exit_code == 0, shown.output
    assert '"dataset.size" = "tiny"' in shown.output and '"dataset.seed" = 3' in shown.output
    assert 'dataset = "synthetic"' in shown.output
    wrong = CliRunner().invoke(cli, ["config", "show", "dcase-ae", "--root", str(out), "--set", "dataset.size=full"])
    assert wrong.exit_code == 0 and '"dataset.size" = "full"' in wrong.output  # what the user set stays


def test_missing_root_is_a_clear_error(tmp_path):
    from asdbench_plugins.datasets.dcase2020_layout import scan_tree

    with pytest.raises(AsdbenchError, match="does not exist"):
        scan_tree(tmp_path / "nope")
