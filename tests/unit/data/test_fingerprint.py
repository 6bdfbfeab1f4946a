"""The data fingerprint: what `--resume` and `compare` take to be the same data."""

from __future__ import annotations

import os
import shutil

import numpy as np
import soundfile as sf

from asdbench.api import Clip
from asdbench.data.fingerprint import data_fingerprint


def _tree(root, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    clips = []
    for n in range(3):
        path = root / "fan" / "train" / f"normal_id_00_{n:08d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, rng.uniform(-0.5, 0.5, 16000 * 3), 16000, subtype="PCM_16")
        clips.append(Clip(path, "fan", "00", "train", 0))
    return clips


def test_a_recording_replaced_by_another_of_the_same_size_is_other_data(tmp_path):
    clips = _tree(tmp_path / "a")
    before = data_fingerprint("dcase2020t2", clips, [])
    replacement = _tree(tmp_path / "b", seed=1)[1].path  # same format, same length, other samples
    assert replacement.stat().st_size == clips[1].path.stat().st_size
    shutil.copyfile(replacement, clips[1].path)
    assert data_fingerprint("dcase2020t2", clips, []) != before


def test_a_change_in_the_middle_or_at_the_end_of_a_file_is_seen_too(tmp_path):
    clips = _tree(tmp_path)
    before = data_fingerprint("dcase2020t2", clips, [])
    for where in (os.path.getsize(clips[0].path) // 2, os.path.getsize(clips[0].path) - 2):
        with open(clips[0].path, "r+b") as fh:
            fh.seek(where)
            old = fh.read(2)
            fh.seek(where)
            fh.write(bytes(b ^ 0xFF for b in old))
        assert data_fingerprint("dcase2020t2", clips, []) != before
        with open(clips[0].path, "r+b") as fh:
            fh.seek(where)
            fh.write(old)
        assert data_fingerprint("dcase2020t2", clips, []) == before


def test_a_copy_in_another_folder_with_new_modification_times_is_the_same_data(tmp_path):
    clips = _tree(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere")  # copytree keeps times; touch them
    moved = [Clip(tmp_path / "elsewhere" / c.path.relative_to(tmp_path / "a"), "fan", "00", "train", 0) for c in clips]
    for clip in moved:
        os.utime(clip.path, (1e9, 1e9))
    assert data_fingerprint("dcase2020t2", moved, []) == data_fingerprint("dcase2020t2", clips, [])
    assert data_fingerprint("dcase2021t2", moved, []) != data_fingerprint("dcase2020t2", clips, [])
