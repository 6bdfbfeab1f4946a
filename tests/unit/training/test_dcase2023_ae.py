"""``dcase2023-ae``, the official DCASE 2023-2026 baseline in its MSE mode: its features are librosa's, its vectors
the baseline's, its network the baseline's (../shared/reference/dcase2026-and-official-ae.md, section 2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from asdbench.build import build_model, instantiate
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.plugins import build_plugins

librosa = pytest.importorskip("librosa")


def _frontend(num_samples: int = 16000):
    plugins = build_plugins()
    config = resolve(plugins, "dcase2023-ae", set_values={})
    return plugins, config, instantiate(plugins, config, "frontend", sample_rate=16000, num_samples=num_samples)


def test_the_log_mel_and_its_vectors_are_librosas_and_the_baselines():
    """librosa.feature.melspectrogram (Slaney scale and norm, centred frames padded with zeros), then
    10 log10(max(M, eps)); vector t is frames t..t+4, frame after frame (640 values)."""
    _, _, frontend = _frontend(24000)
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 24000).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    expected = 10.0 * np.log10(np.maximum(mel, sys.float_info.epsilon))  # (128, 47)
    ours = frontend.log_mel(torch.from_numpy(wave)[None])[0].numpy()
    assert ours.shape == expected.shape == (128, 47)
    np.testing.assert_allclose(ours, expected, atol=1e-3)  # dB (1.2e-4 measured): float32 against float64
    vectors = frontend(torch.from_numpy(wave)[None])[0].numpy()
    stacked = np.stack([expected[:, t:t + 5].T.reshape(-1) for t in range(47 - 5 + 1)])
    assert vectors.shape == (43, 640)
    np.testing.assert_allclose(vectors, stacked, atol=2e-3)


def test_silence_is_the_epsilon_floor_and_lengths_give_the_baselines_vector_counts():
    _, _, frontend = _frontend()
    silent = frontend.log_mel(torch.zeros(1, 16000))
    assert torch.allclose(silent, torch.full_like(silent, 10.0 * np.log10(sys.float_info.epsilon)))  # -156.54 dB
    # 1 + floor(samples / 512) centred frames, 4 fewer vectors: 6, 10, 12 and 16 s clips of DCASE 2026
    assert [frontend.output_shape(s * 16000)[0] for s in (6, 10, 12, 16)] == [184, 309, 372, 497]


def test_the_network_is_the_baselines_with_pytorchs_initialisation():
    plugins, config, frontend = _frontend()
    model, _ = build_model(plugins, config, frontend, (640,), 1)
    assert sum(p.numel() for p in model.backbone.parameters() if p.requires_grad) == 267_928
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 9 and all((m.momentum, m.eps) == (0.01, 1e-3) for m in norms)
    linear = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Linear))
    assert linear.bias.abs().sum() > 0  # PyTorch's default initialisation; the 2020 baseline's biases start at zero
    assert config["batch_size"] == 256 and config["epochs"] == 100 and config["seed"] == 13711


def test_it_runs_on_the_2026_layout(tmp_path):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d26", "dcase2026t2", "tiny", seed=1)
    result = CliRunner().invoke(cli, ["run", "dcase2023-ae", "--root", str(tree), "--set", "epochs=1",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 0, result.output
    assert "dcase2023-ae on dcase2026t2" in result.output and "h-mean" in result.output


def test_a_tenth_of_the_vectors_is_held_out_as_train_test_split_draws_them():
    from asdbench.training.loop import held_out_examples

    kept, held = held_out_examples(3091, 0.1, seed=13711)
    assert len(held) == 310 and len(kept) == 2781  # ceil(0.1 n), as train_test_split(test_size=0.1)
    assert sorted(kept + held) == list(range(3091))
    assert held == held_out_examples(3091, 0.1, seed=13711)[1] != held_out_examples(3091, 0.1, seed=1)[1]


def test_a_subset_of_framed_windows_gives_exactly_those_windows_and_their_clips_domains():
    from asdbench.data.examples import Examples, Windowing, as_frames

    _, _, frontend = _frontend(8000)
    base = frontend.base(torch.randn(3, 8000, generator=torch.Generator().manual_seed(0)))  # (3, 16, 128)
    data = Examples(base, torch.tensor([0, 1, 2]), True, Windowing.of(frontend, base.shape[1]),
                    domains=torch.tensor([False, True, False]))
    framed = as_frames(data)
    every = framed.all_inputs()
    assert every.shape == (36, 640) and len(framed) == 36  # 12 vectors of 5 frames per clip
    rows = [35, 0, 13, 12, 24]
    part = framed.subset(rows)
    x, y = part.batch(torch.arange(5), torch.device("cpu"))
    assert len(part) == 5 and torch.equal(x, every[rows]) and y.tolist() == [2, 0, 1, 1, 2]
    assert torch.equal(part.all_inputs(), every[rows]) and torch.equal(part.example(2), every[13:14])
    assert part.example_domains().tolist() == [False, False, True, True, False]
    assert torch.equal(part.subset([4, 0]).all_inputs(), every[[24, 35]])  # a subset of a subset


def test_the_threshold_is_fitted_on_batch_scores_of_training_then_held_out_vectors(tmp_path):
    """ToyCar of the tiny 2026 tree: 10 clips of 34 vectors, 34 held out, 306 trained on: batches of 256 and 50,
    then one held-out batch of 34: three scores, each a batch's mean squared error as one clip."""
    from asdbench.data.plan import make_plan
    from asdbench.progress import Reporter
    from asdbench.training.runner import execute
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d26", "dcase2026t2", "tiny", seed=1)
    plugins = build_plugins()
    config = resolve(plugins, "dcase2023-ae", set_values={"dataset": "dcase2026t2", "dataset.root": str(tree),
                                                          "epochs": 1, "types": ["ToyCar"]})
    lines: list[str] = []

    class Lines(Reporter):
        def info(self, message: str) -> None:
            lines.append(message)

    result = execute(plugins, make_plan(plugins, config), Lines())
    assert "Model 'ToyCar': 34 of 340 training examples held out for the thresholds (threshold.scores=batches)" in lines
    scores = result.train_scores[("ToyCar", "00")]
    assert len(scores) == 3 and all(s > 0 for s in scores)
    from scipy import stats

    shape, loc, scale = stats.gamma.fit(scores)
    assert result.thresholds[("ToyCar", "00")] == pytest.approx(stats.gamma.ppf(0.9, shape, loc=loc, scale=scale))


def test_batch_thresholds_need_frames():
    from asdbench.data.plan import make_plan
    from asdbench.errors import AsdbenchError

    plugins = build_plugins()
    with pytest.raises(AsdbenchError, match="threshold.scores=batches .* needs train_unit=frame"):
        make_plan(plugins, resolve(plugins, "stgram-mfn", set_values={"dataset.size": "tiny",
                                                                       "threshold.scores": "batches"}))
