"""Noisy-ArcMix (TASTgram-MFN) and the mixup mechanism: sizes, shapes and loss values of
../shared/reference/methods-beyond.md (section 1.7), and the system end to end."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.api import Mix, ModelOutput
from asdbench.build import build_model, count_parameters
from asdbench.config import resolve
from asdbench.errors import AsdbenchError
from asdbench.mixup import Mixer
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runner import execute, load_dataset
from asdbench.runtime import resolve_runtime


def _loss(**params):
    return build_plugins().registry("loss").get("noisy-arcmix").factory(num_classes=3, embedding_dim=4, **params)


def _output(cosines: list[float]) -> ModelOutput:
    """An embedding whose cosines with the unit class vectors e1, e2, e3 are ``cosines``."""
    rest = math.sqrt(1 - sum(c * c for c in cosines))
    return ModelOutput(embedding=torch.tensor([[*cosines, rest]]))


def _unit_head(loss):
    with torch.no_grad():
        loss.weight.copy_(torch.eye(3, 4))
    return loss


def test_arcface_logits_and_noisy_arcmix_and_arcmix_losses_match_the_reference_values():
    loss = _unit_head(_loss())
    out, label = _output([0.5, 0.0, 0.2]), torch.tensor([0])
    assert loss.logits(out, label)[0].tolist() == pytest.approx([-5.2646, 0.0, 6.0], abs=1e-4)
    assert loss(out, label).item() == pytest.approx(11.2671, abs=1e-4)
    assert torch.nn.functional.cross_entropy(loss.logits(out, label), torch.tensor([1])).item() == pytest.approx(
        6.0025, abs=1e-4)
    # a batch of two identical examples, labels 0 and 1, each the other's partner, weight 0.7: example 0 is the
    # reference's (y_a = 0, y_b = 1)
    batch = ModelOutput(embedding=out.embedding.repeat(2, 1))
    mix = Mix(torch.tensor([0.7, 0.7]), torch.tensor([1, 0]))
    assert loss.mixed(batch, torch.tensor([0, 1]), mix)[0].item() == pytest.approx(9.6877, abs=1e-4)
    arcmix = _unit_head(_loss(mode="arcmix"))
    assert arcmix.mixed(batch, torch.tensor([0, 1]), mix)[0].item() == pytest.approx(18.1850, abs=1e-4)
    # past theta + m = pi the target logit falls back to cos - m sin(pi - m)
    assert loss.logits(_output([-0.9, 0.0, 0.0]), label)[0, 0].item() == pytest.approx(-40.5286, abs=1e-4)


def test_tastgram_mfn_has_the_reference_size_shapes_and_temporal_attention():
    plugins = build_plugins()
    cfg = resolve(plugins, "noisy-arcmix")
    frontend = plugins.registry("frontend").get("tastgram").factory(16000, 160000)
    shape = frontend.output_shape(160000)
    assert shape == (3, 128, 313)
    model, _ = build_model(plugins, cfg, frontend, shape, num_classes=41)
    assert count_parameters(model) == 1_156_566  # 1,161,855 with the authors' unused fc_out (5,289)
    assert count_parameters(model.frontend) == 280_406 and model.backbone.gdc_kernel == (8, 20)
    assert model(torch.zeros(2, 160000), False).embedding.shape == (2, 128)
    from asdbench_plugins.frontends.tastgram import temporal_attention

    assert temporal_attention(torch.ones(1, 1, 128, 313)).flatten().tolist() == pytest.approx(
        [1 / (1 + math.exp(-2))] * 128 * 313)  # sigmoid(max + mean) = sigmoid(2) = 0.8808
    wave = torch.randn(2, 160000) * 0.1
    plain = frontend(wave)
    assert torch.allclose(frontend.forward_mixed(wave, Mix(torch.ones(2), torch.tensor([1, 0]))), plain)
    mixed = frontend.forward_mixed(wave, Mix(torch.tensor([0.25, 0.25]), torch.tensor([1, 0])))
    logmel = frontend.logmel(wave)
    assert torch.allclose(mixed[:, 1:2], 0.25 * logmel + 0.75 * logmel.flip(0))  # the log-mel is mixed, not recomputed


def test_mixer_draws_per_batch_or_per_example_and_repeats_with_the_seed():
    def draws(mode: str, partner: str, alpha: float = 0.5):
        mixer = Mixer(mode, alpha, partner)
        mixer.start_epoch(torch.Generator().manual_seed(3))
        return [mixer.draw(6, torch.device("cpu")) for _ in range(2)]

    first, again = draws("batch", "shuffle"), draws("batch", "shuffle")
    assert all(torch.equal(a.lam, b.lam) and torch.equal(a.partner, b.partner) for a, b in zip(first, again))
    assert len(set(first[0].lam.tolist())) == 1 and sorted(first[0].partner.tolist()) == list(range(6))
    sample = draws("sample", "reverse", alpha=1.0)[0]
    assert len(set(sample.lam.tolist())) == 6 and sample.partner.tolist() == [5, 4, 3, 2, 1, 0]
    assert Mixer("none", 0.5, "shuffle").draw(6, torch.device("cpu")) is None
    x = torch.arange(6.0).reshape(3, 2)
    assert Mix(torch.tensor([1.0, 0.5, 0.0]), torch.tensor([2, 0, 1])).apply(x).tolist() == [[0, 1], [1, 2], [2, 3]]


def test_a_loss_without_mixed_refuses_mixup_in_one_line():
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "stgram-mfn", set_values={
        "dataset.size": "tiny", "epochs": 1, "clip_seconds": 1.0, "mixup": "batch", "loss": "cross-entropy"}))
    with pytest.raises(AsdbenchError, match="loss 'cross-entropy' cannot train with mixup=batch: it defines no mixed"):
        execute(plugins, cfg, load_dataset(plugins, cfg), Reporter())


@pytest.mark.slow
def test_noisy_arcmix_trains_with_mixup_selects_on_held_out_clips_and_scores():
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "noisy-arcmix", set_values={
        "dataset.size": "tiny", "epochs": 2, "batch_size": 16, "clip_seconds": 1.0, "val_fraction": 0.2}))
    assert (cfg["mixup"], cfg["select"], cfg["optimizer"]) == ("batch", "val", "adamw")
    stats: list[dict] = []
    result = execute(plugins, cfg, load_dataset(plugins, cfg), Reporter(), lambda g, e, s: stats.append(s))
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    assert len(stats) == 2 and all(math.isfinite(s["select_score"]) for s in stats)
    assert result.report.extra["auc_pooled"] == pytest.approx(
        sum(t.extra["auc_pooled"] for t in result.report.types) / len(result.report.types))
