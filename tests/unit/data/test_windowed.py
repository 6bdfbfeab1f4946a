"""Windowed frontends: the cache holds each clip's log-mel once, and batches cut the same features the frontend
gives, value for value (stacked frames used to be stored five times over: 5.9 GB for 8,000 clips of 10 s)."""

from __future__ import annotations

import pytest
import torch

from asdbench.api import WindowedFrontend
from asdbench.cache import cache_dir
from asdbench.config import resolve
from asdbench.data.examples import Examples, Windowing, as_frames
from asdbench.data.plan import make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.training.runner import execute


@pytest.mark.parametrize("name, params", [("logmel-frames", {"frames": 5}),
                                          ("logmel-patches", {"patch_frames": 8, "patch_hop": 3}),
                                          ("logmel-patches", {"patch_frames": 64, "patch_hop": 8})])  # > the clip
def test_batches_cut_from_the_base_equal_the_frontends_features(name, params):
    frontend = build_plugins().registry("frontend").get(name).factory(16000, 8000, **params)
    assert isinstance(frontend, WindowedFrontend)
    waves = torch.randn(4, 8000)
    full = frontend(waves)  # (clips, windows, *example)
    base = frontend.base(waves)
    data = Examples(base, torch.arange(4), True, Windowing.of(frontend, base.shape[1]))
    clips, _ = data.batch(torch.tensor([3, 0]), torch.device("cpu"))
    assert torch.equal(clips, full[[3, 0]])
    frames = as_frames(data)
    flat = full.flatten(0, 1)
    assert len(frames) == len(flat) and frames.example_shape == tuple(flat.shape[1:])
    order = torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))
    x, y = frames.batch(order, torch.device("cpu"))
    assert torch.equal(x, flat[order]) and torch.equal(y, torch.arange(4).repeat_interleave(full.shape[1])[order])
    assert torch.equal(frames.all_inputs(), flat) and torch.equal(frames.example(len(flat) - 1), flat[-1:])


def test_the_feature_cache_holds_each_log_mel_once_and_the_run_is_unchanged(tmp_path, monkeypatch):
    """dcase-ae's entry: (clips, frames, 128 mels) rather than (clips, frames - 4, 5 x 128)."""
    monkeypatch.setenv("ASDBENCH_CACHE", str(tmp_path / "cache"))  # this test's entries only
    plugins = build_plugins()
    config = resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny", "epochs": 1, "types": ["fan"],
                                                      "precision": "fp32"})
    said: list[str] = []
    reporter = Reporter()
    reporter.info = said.append
    cached = execute(plugins, make_plan(plugins, config), reporter)
    # told before reading: 44 clips x 16,000 int16 samples, and 44 x 32 x 128 float32 features
    assert any(line.startswith("Cache: up to 1.4 MB of decoded waves and 0.7 MB of features for this run") for line in said)
    entries = list((cache_dir() / "features").glob("*"))
    clips = sum(len(g.train) + len(g.test) for g in make_plan(plugins, config).groups)
    # fan's training and test clips, 1 s each: 128 mels x 32 frames (hop 512) of float32 per clip, not 28 x 640
    assert sorted((e / "array.bin").stat().st_size for e in entries) == sorted(
        [20 * 128 * 32 * 4, 24 * 128 * 32 * 4]) and clips == 44
    fresh = execute(plugins, make_plan(plugins, config.replace(cache=False)), Reporter())
    assert [v for _, v in cached.scores] == [v for _, v in fresh.scores]
