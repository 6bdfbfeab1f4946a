"""Both microphones of DCASE 2026 (``dataset.channel=both``) as data: read, cached, featurised per microphone and
stacked as channels, trained on, and scored the same by a bundle as by its run."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from asdbench.build import PerMicrophone, build_frontend
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.model import load_model
from asdbench.training.runner import execute


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    return generate_layout(tmp_path_factory.mktemp("d26"), "dcase2026t2", "tiny", seed=5)


def test_each_microphone_is_featurised_alone_and_stacked_near_then_far():
    plugins = build_plugins()
    config = resolve(plugins, "stgram-mfn", set_values={})
    frontend = build_frontend(plugins, config, 16000, 8000, mics=2)
    assert isinstance(frontend, PerMicrophone) and frontend.output_shape(8000) == (4, 128, 16)
    waves = torch.randn(3, 2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stacked = frontend(waves)
        near, far = frontend.inner(waves[:, 0]), frontend.inner(waves[:, 1])
    assert torch.equal(stacked, torch.cat([near, far], dim=1))  # near log-mel, near Tgram, far log-mel, far Tgram


def test_a_frontend_without_a_channel_axis_is_refused_before_anything_trains(tree, tmp_path):
    result = CliRunner().invoke(cli, ["run", "dcase2023-ae", "--root", str(tree), "--set", "dataset.channel=both",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and "Training" not in result.output
    assert "Error: dataset.channel=both stacks each microphone's features as channels; frontend 'logmel-frames' " \
           "gives features of shape (" in result.output


@pytest.mark.slow
def test_stgram_mfn_trains_on_both_microphones_and_its_bundle_scores_as_its_run(tree, tmp_path):
    plugins = build_plugins()
    config = resolve(plugins, "stgram-mfn", set_values={"dataset": "dcase2026t2", "dataset.root": str(tree),
                                                       "dataset.channel": "both", "epochs": 1, "batch_size": 8})
    plan = make_plan(plugins, config)
    result = execute(plugins, plan, Reporter())
    assert set(result.input_shapes.values()) == {(4, 128, plan.samples["all"] // 512 + 1)}  # 2 mics x (log-mel, Tgram)
    near = execute(plugins, make_plan(plugins, config.replace(**{"dataset.channel": "first"})), Reporter())
    assert [s for _, s in result.scores] != [s for _, s in near.scores]
    dataset = load_dataset(plugins, plan.config)
    folder = write_bundle(tmp_path / "bundle", manifest(plan.config, plugins, result, dataset.sample_rate,
                                                        result.num_samples), result.models)
    decided = {d.path: d.score for d in load_model(folder).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided


def test_the_far_microphone_as_a_noise_reference_is_spectral_subtraction():
    """logmel-denoised: no far signal gives the near log-mel; a far signal equal to the near one leaves the floor,
    10 log10(floor) dB below it; a data set read with one microphone is refused."""
    plugins = build_plugins()
    config = resolve(plugins, "logmel-mfn", set_values={"frontend": "logmel-denoised", "frontend.floor": 0.01})
    frontend = build_frontend(plugins, config, 16000, 8000, mics=2)
    near = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    assert frontend.output_shape(8000) == (1, 128, 16) and not isinstance(frontend, PerMicrophone)
    with torch.no_grad():
        plain = frontend.log_mel(near).unsqueeze(1)
        assert torch.allclose(frontend(torch.stack([near, torch.zeros_like(near)], dim=1)), plain)
        same = frontend(torch.stack([near, near], dim=1))
    audible = plain > -90  # above the 1e-10 floor of the dB scale
    assert torch.allclose(same[audible], plain[audible] - 20.0, atol=1e-3)  # 10 log10(0.01) = -20 dB
    with pytest.raises(AsdbenchError, match="frontend 'logmel-denoised' reads 2 microphones at once; the data set's "
                                            r"clips are read with 1 \(DCASE 2026: dataset.channel=both\)"):
        build_frontend(plugins, config, 16000, 8000, mics=1)


@pytest.mark.parametrize("rule", ["both", "difference", "second"])
def test_a_rule_needing_a_second_channel_on_one_channel_clips_is_refused_before_a_store_exists(rule, tmp_path):
    """It used to fail at the first model's first clip, after the MLflow run had started."""
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d23", "dcase2023t2", "tiny", seed=1)
    result = CliRunner().invoke(cli, ["run", "stgram-mfn", "--root", str(tree), "--set", f"dataset.channel={rule}",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and not (tmp_path / "mlflow.db").exists()
    assert f"Error: dataset.channel={rule} reads a second channel, but " in result.output
    assert "has one (DCASE 2026's clips have two, earlier years' one): use dataset.channel=first" in result.output
