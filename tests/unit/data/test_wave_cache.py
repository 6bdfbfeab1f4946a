import os

import numpy as np
import pytest

from asdbench.config import resolve
from asdbench.data import wave_cache
from asdbench.data.plan import load_dataset, make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training.runner import execute
from support import CountingDataset


def _run(plugins, dataset, **values):
    cfg = resolve_runtime(resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny", "epochs": 2, **values}))
    return [s for _, s in execute(plugins, make_plan(plugins, cfg, dataset), Reporter()).scores]


def test_results_are_identical_with_and_without_the_cache():
    plugins = build_plugins()
    dataset = load_dataset(plugins, resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny"}))
    without = _run(plugins, dataset, cache=False)
    first = _run(plugins, dataset, cache=True)  # decodes into the cache
    second = _run(plugins, dataset, cache=True)  # reads the memory map
    assert np.allclose(without, first, atol=1e-6, rtol=0) and first == second


def test_each_wav_is_decoded_once_and_changes_invalidate():
    plugins = build_plugins()
    counting = CountingDataset(load_dataset(plugins, resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny"})))
    n_clips = len(counting.clips("train")) + len(counting.clips("test"))
    _run(plugins, counting, clip_seconds=0.5)
    assert counting.loads == n_clips
    _run(plugins, counting, clip_seconds=0.5)
    assert counting.loads == n_clips  # all from the cache
    _run(plugins, counting, clip_seconds=0.75)  # another decoding setting: a new entry
    assert counting.loads == 2 * n_clips
    clip = counting.clips("train")[0]
    os.utime(clip.path, ns=(clip.path.stat().st_atime_ns, clip.path.stat().st_mtime_ns + 10**9))  # a changed file
    _run(plugins, counting, clip_seconds=0.5)
    assert counting.loads == 2 * n_clips + len([c for c in counting.clips("train") if c.machine_type == clip.machine_type])


def test_an_interrupted_decode_leaves_no_entry(tmp_path):
    plugins = build_plugins()
    dataset = load_dataset(plugins, resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny"}))
    clips = tuple(dataset.clips("train")[:5])
    calls = []

    def failing(clip):
        calls.append(clip)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return dataset.load(clip)

    with pytest.raises(KeyboardInterrupt):
        wave_cache.load_or_decode("x", 16000, 1600, "repeat", np.int16, clips, failing)
    waves, lengths = wave_cache.load_or_decode("x", 16000, 1600, "repeat", np.int16, clips, dataset.load)
    assert waves.shape == (5, 1600) and list(lengths) == [16000] * 5
    assert np.array_equal(waves[0], np.clip(np.round(dataset.load(clips[0])[:1600] * 32768), -32768, 32767))
