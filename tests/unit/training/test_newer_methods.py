"""Noisy-ArcMix (TASTgram-MFN) and the mixup mechanism: sizes, shapes and loss values of
../shared/reference/methods-beyond.md (section 1.7), and the system end to end."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.api import Mix, ModelOutput
from asdbench.build import build_model, count_parameters
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training.mixup import Mixer
from asdbench.training.runner import execute


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
        execute(plugins, make_plan(plugins, cfg), Reporter())


@pytest.mark.slow
def test_noisy_arcmix_trains_with_mixup_selects_on_held_out_clips_and_scores():
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "noisy-arcmix", set_values={
        "dataset.size": "tiny", "epochs": 2, "batch_size": 16, "clip_seconds": 1.0, "val_fraction": 0.2}))
    assert (cfg["mixup"], cfg["select"], cfg["optimizer"]) == ("batch", "val", "adamw")
    stats: list[dict] = []
    result = execute(plugins, make_plan(plugins, cfg), Reporter(), lambda g, e, s: stats.append(s))
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    assert len(stats) == 2 and all(math.isfinite(s["select_score"]) for s in stats)
    assert result.report.extra["auc_pooled"] == pytest.approx(
        sum(t.extra["auc_pooled"] for t in result.report.types) / len(result.report.types))


def _adacos(subclusters: int, classes: int = 41, dim: int = 128):
    from asdbench_plugins.losses.adacos import SubclusterAdaCos

    return SubclusterAdaCos(classes, dim, subclusters=subclusters)


def test_adacos_scales_start_at_sqrt2_ln_ck_minus_1_and_the_update_matches_wilkinghoffs_form():
    assert [round(_adacos(k).scale.item(), 4) for k in (1, 2, 4, 8, 16)] == [5.2169, 6.2147, 7.2037, 8.1882, 9.1707]
    loss = _adacos(1)
    with torch.no_grad():  # centres e1..e41, the embedding e128: every cosine is 0
        loss.weight.copy_(torch.eye(128, 41))
    embedding = torch.zeros(3, 128)
    embedding[:, 127] = 1
    loss.train()
    loss(ModelOutput(embedding=embedding), torch.tensor([0, 1, 2]))
    # B_avg = 41 columns of exp(0), theta = pi/2 > pi/4: ln(41) / cos(pi/4) (AK's form, targets left out: 5.2169)
    assert loss.scale.item() == pytest.approx(math.log(41) / math.cos(math.pi / 4) + 1e-7, abs=1e-5)


def test_subcluster_adacos_class_probabilities_sum_to_one_and_one_subcluster_is_adacos():
    torch.manual_seed(0)
    out = ModelOutput(embedding=torch.randn(5, 128))
    many = _adacos(16).eval()
    assert many.log_probabilities(many.cosine(out)).exp().sum(dim=1).tolist() == pytest.approx([1.0] * 5, abs=1e-5)
    one = _adacos(1).eval()
    assert torch.allclose(one.logits(out, None), torch.log_softmax(one.scale * one.cosine(out), dim=1), atol=1e-6)
    assert many.centres(3).shape == (16, 128)


def test_wilkinghoff_cnn_has_the_keras_models_trainable_size_and_standardises_its_input():
    plugins = build_plugins()
    cfg = resolve(plugins, "subcluster-adacos")
    frontend = plugins.registry("frontend").get("logmel").factory(16000, 160000, mel_scale="slaney", norm="slaney",
                                                                  periodic_window=False)
    shape = frontend.output_shape(160000)
    assert shape == (1, 128, 313)
    model, scorer = build_model(plugins, cfg, frontend, shape, num_classes=41)
    assert count_parameters(model.backbone) == 766_944  # 768,896 as Keras counts, with 1,952 batch-norm statistics
    assert count_parameters(model.loss) == 128 * 41 * 16 and scorer.n_components == 16
    noise = torch.randn(4, 1, 128, 313)
    noise = (noise - noise.mean(dim=(0, 1, 3), keepdim=True)) / noise.std(dim=(0, 1, 3), keepdim=True)
    features = 3 * noise + torch.arange(128.0).reshape(1, 1, 128, 1)  # band b: mean b, standard deviation 3
    model.backbone.fit_input(features)
    assert model.backbone.input_mean.tolist() == pytest.approx(torch.arange(128.0).tolist(), abs=1e-3)
    assert model.backbone.input_std.tolist() == pytest.approx([3.0] * 128, abs=1e-3)
    assert model(features, True).embedding.shape == (4, 128)


@pytest.mark.slow
@pytest.mark.parametrize("system", ["adacos", "subcluster-adacos"])
def test_adacos_systems_train_with_per_example_mixup_and_score_with_their_gmm(system):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, system, set_values={
        "dataset.size": "tiny", "epochs": 2, "batch_size": 16, "clip_seconds": 1.0,
        **({"loss.subclusters": 2, "scorer.n_components": 2} if system == "subcluster-adacos" else {})}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    state = next(iter(result.models.values()))
    assert state["backbone.input_std"].min() > 0 and "loss.scale" in state


def test_supcon_of_the_reference_example():
    from asdbench_plugins.losses.supcon import supcon

    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert supcon(z, torch.tensor([0, 0, 1])).mean().item() == pytest.approx(0.95239, abs=1e-5)


def test_os_scl_model_has_the_reference_size_shapes_and_a_unit_embedding():
    plugins = build_plugins()
    cfg = resolve(plugins, "os-scl")
    frontend = plugins.registry("frontend").get("tfgram").factory(16000, 160000)
    assert frontend.output_shape(160000) == (3, 128, 313)
    assert count_parameters(frontend.tfgram) == 198_720 and count_parameters(frontend.tgram) == 280_406
    model, _ = build_model(plugins, cfg, frontend, (3, 128, 313), num_classes=41)
    assert count_parameters(model.backbone.projection) == 16_960
    assert count_parameters(model) == 1_372_246  # 1,377,535 with the authors' unused fc_out (5,289)
    model.eval()
    assert model(torch.randn(2, 160000) * 0.1, False).embedding.norm(dim=1).tolist() == pytest.approx([1.0, 1.0])
    loss = _unit_head(plugins.registry("loss").get("arcface-supcon").factory(num_classes=3, embedding_dim=4,
                                                                              margin=cfg["loss.margin"]))
    out, label = _output([0.5, 0.0, 0.2]), torch.tensor([0])
    assert loss.logits(out, label)[0].tolist() == pytest.approx([3.6985, 0.0, 6.0], abs=1e-4)
    assert loss(out, label).item() == pytest.approx(2.3991, abs=1e-4)


def test_moving_average_starts_as_the_model_averages_weights_and_statistics_and_shrinks_the_live_model():
    from asdbench.training.loop import MovingAverage

    model = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[1].running_mean.fill_(4.0)
    ema = MovingAverage(model, decay=0.75, live_decay=0.5)
    with torch.no_grad():
        model[0].weight.fill_(6.0)
        model[1].running_mean.fill_(8.0)
    ema.update(model)
    averaged = ema.averaged
    assert averaged[0].weight.item() == 0.75 * 2 + 0.25 * 6 and averaged[1].running_mean.item() == 0.75 * 4 + 0.25 * 8
    assert model[0].weight.item() == 3.0 and model[1].running_mean.item() == 4.0  # the live model times 1 - 0.5


@pytest.mark.slow
def test_os_scl_trains_with_its_ema_teacher_and_keeps_the_average():
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "os-scl", set_values={
        "dataset.size": "tiny", "epochs": 2, "batch_size": 16, "clip_seconds": 1.0, "val_fraction": 0.2,
        "ema": 0.5}))
    assert (cfg["loss"], cfg["backbone.projection"], cfg["ema.live_decay"]) == ("arcface-supcon", "fp", 2e-6)
    stats: list[dict] = []
    result = execute(plugins, make_plan(plugins, cfg), Reporter(), lambda g, e, s: stats.append(s))
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    assert all(math.isfinite(s["select_score"]) for s in stats)


@pytest.mark.parametrize("length, size", [(626, 313), (1000, 313), (7, 3), (313, 626)])
def test_tfgram_pooling_under_torch_export_takes_the_maxima_of_adaptive_max_pooling(length, size, monkeypatch):
    """ONNX has no translation of adaptive max pooling where the size does not divide the length: the traced path
    gathers the same windows, and must give exactly PyTorch's maxima (1000 -> 313: windows of 4 and of 5)."""
    import torch.nn.functional as F

    from asdbench_plugins.frontends.tfgram import adaptive_max_pool1d

    x = torch.randn(2, 3, length)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    assert torch.equal(adaptive_max_pool1d(x, size), F.adaptive_max_pool1d(x, size))
