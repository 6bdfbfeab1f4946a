"""Training-data augmentations (config ``augmentation``): SpecAugment's masks, noise mixing at an exact SNR from each
source, both seeded, before anything trains when they cannot work, and in runs: training data only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from asdbench.api import Clip
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.training.runner import execute
from asdbench_plugins.augmentations.noise_mix import NoiseMix
from asdbench_plugins.augmentations.specaugment import SpecAugment, _spans


def test_specaugment_masks_whole_bands_and_spans_with_the_channels_mean():
    features = torch.arange(2 * 3 * 20 * 50, dtype=torch.float32).reshape(2, 3, 20, 50)  # (B, channels, F, T)
    out = SpecAugment(freq_masks=1, freq_width=6, time_masks=2, time_width=10)(features, torch.Generator().manual_seed(1))
    masked = out != features
    assert masked.any() and out.shape == features.shape
    for b in range(2):
        for c in range(3):  # every masked cell takes the mean of its example's channel (Tgram and log-mel differ)
            assert torch.all(out[b, c][masked[b, c]] == features[b, c].mean())
        assert torch.equal(masked[b, 0], masked[b, 1])  # one mask across the channels of an example
        # a masked cell's whole frequency row or whole time column is masked: bands and spans, nothing else
        cells = masked[b, 0]
        rows, cols = cells.all(dim=1), cells.all(dim=0)
        assert torch.equal(cells, rows[:, None] | cols[None, :])
        assert rows.sum() <= 6 and cols.sum() <= 20
    again = SpecAugment(freq_masks=1, freq_width=6, time_masks=2, time_width=10)(features,
                                                                                   torch.Generator().manual_seed(1))
    assert torch.equal(again, out)  # the generator decides


def test_a_span_is_contiguous_no_wider_than_its_width_and_every_width_occurs():
    keep = _spans(4000, 30, 1, 5, torch.Generator().manual_seed(0))
    widths = (~keep).sum(dim=1)
    assert widths.max() == 5 and set(widths.tolist()) == set(range(6))  # uniform in [0, width]
    for row in (~keep)[:200]:
        where = row.nonzero().squeeze(1)
        assert len(where) == 0 or where.max() - where.min() + 1 == len(where)


def test_specaugment_refuses_features_without_frequency_and_time_before_anything_trains(tmp_path):
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "augmentation=specaugment",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and "Training" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: specaugment masks (frequency, time) features;")


class _Folder:
    """A data set of nothing but a sample rate: noise-mix with a folder source needs no more."""

    sample_rate = 16000

    def clips(self, split):
        return []


def test_noise_is_mixed_at_the_snr_drawn(tmp_path):
    noise = np.sin(np.arange(16000) * 0.3).astype(np.float32) * 0.5
    sf.write(str(tmp_path / "hum.wav"), noise, 16000, subtype="FLOAT")
    clean = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (3, 4000)).astype(np.float32))
    clips = [Clip(tmp_path / f"c{i}.wav", "fan", "00", "train", 0) for i in range(3)]
    mix = NoiseMix(_Folder(), source=str(tmp_path), copies=2, snr_low=6.0, snr_high=6.0)
    made, source = mix(clean, clips, torch.Generator().manual_seed(0))
    assert made.shape == (6, 4000) and source.tolist() == [0, 1, 2, 0, 1, 2]
    added = made - clean[source]
    snr = 20 * torch.log10(clean[source].pow(2).mean(1).sqrt() / added.pow(2).mean(1).sqrt())
    assert snr.tolist() == pytest.approx([6.0] * 6, abs=1e-4)
    # what was added is a stretch of the hum, scaled: its correlation with the hum is 1
    start = int(np.argmax(np.correlate(noise[:8000], added[0].numpy()[:2000])))
    ratio = added[0].numpy() / noise[start:start + 4000]
    assert np.allclose(ratio, ratio[0], rtol=1e-3)
    wide = NoiseMix(_Folder(), source=str(tmp_path), snr_low=0.0, snr_high=20.0)
    first, _ = wide(clean, clips, torch.Generator().manual_seed(0))
    assert torch.equal(first, wide(clean, clips, torch.Generator().manual_seed(0))[0])  # seeded
    assert not torch.equal(first, wide(clean, clips, torch.Generator().manual_seed(1))[0])


def test_a_source_that_cannot_give_noise_is_one_line(tmp_path):
    plugins = build_plugins()
    config = resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny", "augmentation": "noise-mix"})
    with pytest.raises(AsdbenchError, match=r"source=far reads the far microphone .* has one channel"):
        make_plan(plugins, config)
    for source, message in [("supplemental", "has no supplemental noise clips"),
                            (str(tmp_path / "nowhere"), "is neither far, supplemental, nor a folder"),
                            (str(tmp_path), "no .wav files in this folder")]:
        with pytest.raises(AsdbenchError, match=message):
            make_plan(plugins, resolve(plugins, "dcase-ae", set_values={
                "dataset.size": "tiny", "augmentation": "noise-mix", "augmentation.source": source}))


def _execute(tree, system: str, **values):
    """One epoch of ``system`` on ``tree``, thresholds from clip scores and nothing held out unless ``values`` say."""
    plugins = build_plugins()
    config = resolve(plugins, system, set_values={"dataset": tree[0], "dataset.root": str(tree[1]), "epochs": 1,
                                                  "threshold.scores": "clips", "hold_out": "none", **values})
    lines: list[str] = []

    class Lines(Reporter):
        def info(self, message: str) -> None:
            lines.append(message)

    return execute(plugins, make_plan(plugins, config), Lines()), lines


@pytest.fixture(scope="module")
def tree_2026(tmp_path_factory):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    return "dcase2026t2", generate_layout(tmp_path_factory.mktemp("d26"), "dcase2026t2", "tiny", seed=3)


def test_the_far_microphone_noises_the_training_clips_and_only_those(tree_2026):
    """The augmented clips join training; the thresholds come from the clean training clips alone, and the test
    clips are scored as without augmentation: the same model weights would give the same scores."""
    plain, _ = _execute(tree_2026, "dcase2023-ae", types=["ToyCar"])
    noisy, lines = _execute(tree_2026, "dcase2023-ae", types=["ToyCar"], augmentation="noise-mix",
                            **{"augmentation.copies": 2})
    assert "Model 'ToyCar': 20 augmented clips (noise-mix) join its 10 training clips" in lines
    assert len(noisy.train_scores[("ToyCar", "00")]) == len(plain.train_scores[("ToyCar", "00")]) == 10
    assert [c for c, _ in noisy.scores] == [c for c, _ in plain.scores]
    assert [s for _, s in noisy.scores] != [s for _, s in plain.scores]  # trained on more, and noisier, clips
    assert all(math.isfinite(s) for _, s in noisy.scores)


def test_held_out_clips_lend_no_copies_to_training(tree_2026):
    _, lines = _execute(tree_2026, "dcase2023-ae", types=["ToyCar"], augmentation="noise-mix", select="val",
                        val_fraction=0.2)
    held = next(line for line in lines if "held out" in line)
    assert held.startswith("Model 'ToyCar': 2 of 10 training clips held out")
    assert "Model 'ToyCar': 8 augmented clips (noise-mix) join its 8 training clips" in lines


def test_specaugment_trains_a_clip_level_model_repeatably(tree_2026):
    first, _ = _execute(tree_2026, "stgram-mfn", augmentation="specaugment", batch_size=8)
    again, _ = _execute(tree_2026, "stgram-mfn", augmentation="specaugment", batch_size=8)
    plain, _ = _execute(tree_2026, "stgram-mfn", batch_size=8)
    assert first.scores == again.scores and first.scores != plain.scores


def test_feature_exchange_takes_the_partners_second_branch_and_labels_the_example_anew():
    """The authors' layer: the reversed batch as partners; an exchanged example is half class K + y (its first
    branch) and half 2K + y' (its partner's second branch); the others keep their class and their features."""
    from asdbench.api import Mix
    from asdbench_plugins.augmentations.featex import FeatEx

    x = torch.arange(4 * 3 * 2, dtype=torch.float32).reshape(4, 3, 2)  # 4 examples, 3 channels (branches)
    mix = Mix(torch.tensor([1.0, 0.5, 0.5, 1.0]), torch.tensor([3, 2, 1, 0]), exchange=1)
    out = mix.apply(x)
    assert torch.equal(out[[0, 3]], x[[0, 3]]) and torch.equal(out[:, 0], x[:, 0])
    assert torch.equal(out[1, 1:], x[2, 1:]) and torch.equal(out[2, 1:], x[1, 1:])

    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    drawn = FeatEx(channel=1, p=0.5).draw(target, 3, torch.Generator().manual_seed(4))
    exchanged = drawn.lam < 1
    assert drawn.partner.tolist() == [7, 6, 5, 4, 3, 2, 1, 0] and 0 < int(exchanged.sum()) < 8
    assert drawn.first(target).tolist() == [3 + y if e else y for y, e in zip(target.tolist(), exchanged.tolist())]
    expected = [6 + target[7 - i].item() if e else target[i].item() for i, e in enumerate(exchanged.tolist())]
    assert drawn.targets(target).tolist() == expected
    many = FeatEx(p=0.3).draw(torch.zeros(20000, dtype=torch.long), 1, torch.Generator().manual_seed(0))
    assert abs(float((many.lam < 1).float().mean()) - 0.3) < 0.02


def test_arcface_on_two_labels_is_each_labels_margin_cross_entropy_weighted():
    from asdbench.api import Mix, ModelOutput
    from asdbench_plugins.losses.classification import ArcFace

    torch.manual_seed(0)
    loss, output = ArcFace(6, 8), ModelOutput(embedding=torch.randn(4, 8))
    target, second = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 4, 3, 2])
    mix = Mix(torch.tensor([1.0, 0.5, 0.5, 0.25]), torch.arange(4), own=target, partner_targets=second)
    each = [torch.nn.functional.cross_entropy(loss.logits(output, t), t, reduction="none") for t in (target, second)]
    assert torch.allclose(loss.mixed(output, target, mix), mix.lam * each[0] + (1 - mix.lam) * each[1])
    assert torch.allclose(loss.mixed(output, target, Mix(torch.ones(4), torch.arange(4))), each[0])


def test_featex_trains_stgram_mfn_on_three_times_its_classes_and_its_bundle_scores_as_its_run(tree_2026, tmp_path):
    from asdbench.serving.bundle import manifest, write_bundle
    from asdbench.serving.model import load_model

    result, _ = _execute(tree_2026, "stgram-mfn", augmentation="featex", batch_size=8)
    plain, _ = _execute(tree_2026, "stgram-mfn", batch_size=8)
    assert result.models["all"]["loss.weight"].shape == (3 * 2, 128)  # 2 sections x 3
    assert [s for _, s in result.scores] != [s for _, s in plain.scores]
    plugins = build_plugins()
    config = resolve(plugins, "stgram-mfn", set_values={"dataset": tree_2026[0], "dataset.root": str(tree_2026[1]),
                                                       "augmentation": "featex"})
    folder = write_bundle(tmp_path / "bundle", manifest(config, plugins, result, 16000, result.num_samples),
                          result.models)
    decided = {d.path: d.score for d in load_model(folder).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided


def test_featex_needs_stacked_branches_and_no_mixup():
    plugins = build_plugins()
    with pytest.raises(AsdbenchError, match=r"exchanges the channels from 1 on; .* \(1, 128, 32\) have 1"):
        make_plan(plugins, resolve(plugins, "logmel-mfn", set_values={"dataset.size": "tiny", "augmentation": "featex"}))
    with pytest.raises(AsdbenchError, match="cannot train with mixup=batch as well: --set mixup=none"):
        make_plan(plugins, resolve(plugins, "noisy-arcmix", set_values={"dataset.size": "tiny",
                                                                         "augmentation": "featex"}))


def test_the_2025_supplemental_noise_clips_of_the_models_types_are_the_noise(tmp_path):
    from asdbench.audio import read_wav
    from asdbench_plugins.datasets.dcase_sections import RELEASES, SectionsDataset
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d25", "dcase2025t2", "tiny", seed=2)
    dataset = SectionsDataset(RELEASES[2025], str(tree), "dev")
    clips = [c for c in dataset.clips("train") if c.machine_type == "fan"]
    noises = NoiseMix(dataset, source="supplemental")._noises(clips, 16000)
    expected = sorted(tree.rglob("fan/supplemental/*noise*.wav"))
    assert len(noises) == len(expected) == 2  # the noise-only clips, not the clean machine ones
    assert all(np.array_equal(n, read_wav(p, 16000, max_samples=60 * 16000)) for n, p in zip(noises, expected))
