import math

import pytest
import torch
import torchaudio

from asdbench.api import ModelOutput
from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import resolve
from asdbench.plugins import build_plugins
from asdbench.training.step import train_step
from asdbench_plugins.backbones.mobilefacenet import MobileFaceNet
from asdbench_plugins.frontends.logmel import LogMel
from asdbench_plugins.frontends.tgram import STgram, TgramNet
from asdbench_plugins.losses.classification import ArcFace, CrossEntropy
from asdbench_plugins.scorers.neg_log_prob import NegativeLogProbability

TEN_SECONDS = 160_000


def test_tgram_and_stgram_shapes_for_a_10s_clip():
    wave = torch.randn(2, TEN_SECONDS)
    assert TgramNet(16000, TEN_SECONDS)(wave).shape == (2, 1, 128, 313)
    assert STgram(16000, TEN_SECONDS)(wave).shape == (2, 2, 128, 313)


def test_tgram_layer_norm_follows_the_clip_length():
    tgram = TgramNet(16000, 32000)
    assert tgram(torch.randn(1, 32000)).shape == (1, 1, 128, 63)
    assert tgram.conv_encoder[0][0].normalized_shape == (63,)


def test_logmel_matches_stft_and_mel_filterbank():
    wave = torch.randn(2, 16000)
    spec = torch.stft(wave, 1024, 512, window=torch.hann_window(1024), center=True, pad_mode="reflect",
                      return_complex=True).abs() ** 2
    fbank = torchaudio.functional.melscale_fbanks(513, 0.0, 8000.0, 128, 16000, norm=None, mel_scale="htk")
    expected = 10 * torch.log10(torch.clamp(fbank.T @ spec, min=1e-10))
    assert torch.allclose(LogMel(16000, 16000)(wave)[:, 0], expected, atol=1e-3)


def test_parameter_count_equals_the_authors_model():
    plugins = build_plugins()
    cfg = resolve(plugins, "stgram-mfn")
    frontend = instantiate(plugins, cfg, "frontend", sample_rate=16000, num_samples=TEN_SECONDS)
    model, _ = build_model(plugins, cfg, frontend, frontend.output_shape(TEN_SECONDS), num_classes=41)
    assert count_parameters(model.frontend) == 280_406  # TgramNet; the log-mel branch has no weights
    assert count_parameters(model.backbone) == 1_059_392
    assert count_parameters(model.loss) == 41 * 128
    assert count_parameters(model) == 1_345_046
    assert model.backbone.gdc_kernel == (8, 20)


def test_mobilefacenet_head_derives_its_kernel_from_the_input():
    assert MobileFaceNet((1, 513, 313), 4).gdc_kernel == (33, 20)
    assert MobileFaceNet((2, 128, 63), 4)(torch.randn(3, 2, 128, 63)).embedding.shape == (3, 128)


def test_arcface_logits_by_hand():
    head = ArcFace(2, 2, margin=0.5, scale=10.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # Embedding at 45 degrees from both classes, target class 0: only class 0 gets the margin.
    out = ModelOutput(embedding=torch.tensor([[1.0, 1.0]]))
    logits = head.logits(out, torch.tensor([0]))
    c = math.cos(math.pi / 4)
    assert logits[0, 0].item() == pytest.approx(10 * math.cos(math.pi / 4 + 0.5), abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(10 * c, abs=1e-5)
    # Target class 1 instead: the margin moves with the target.
    logits = head.logits(out, torch.tensor([1]))
    assert logits[0, 0].item() == pytest.approx(10 * c, abs=1e-5)
    # Near 180 degrees theta + m would pass pi: the insightface fallback cos - m sin m.
    far = ModelOutput(embedding=torch.tensor([[-1.0, 0.0]]))
    assert head.logits(far, torch.tensor([0]))[0, 0].item() == pytest.approx(10 * (-1 - 0.5 * math.sin(0.5)), abs=1e-5)
    loss = head(out, torch.tensor([0]))
    expected = -torch.log_softmax(torch.tensor([10 * math.cos(math.pi / 4 + 0.5), 10 * c]), 0)[0]
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_neg_log_prob_uses_the_losses_logits_for_the_own_id():
    head = CrossEntropy(3, 4)
    out = ModelOutput(embedding=torch.randn(5, 4))
    target = torch.tensor([0, 1, 2, 0, 1])
    scores = NegativeLogProbability().score(out, target, head)
    expected = -torch.log_softmax(head.class_scores(out), 1)[torch.arange(5), target]
    assert torch.allclose(scores, expected)


def _tone(freq: float, n: int, batch: int, noise: float = 0.05) -> torch.Tensor:
    t = torch.arange(n) / 16000
    return torch.sin(2 * math.pi * freq * t) * 0.3 + noise * torch.randn(batch, n)


@pytest.mark.parametrize("system", ["stgram-mfn", "stgram-mfn-cee"])
def test_loss_falls_and_an_off_distribution_clip_scores_higher(system):
    torch.manual_seed(0)
    plugins = build_plugins()
    cfg = resolve(plugins, system)
    n = 8000
    frontend = instantiate(plugins, cfg, "frontend", sample_rate=16000, num_samples=n)
    model, scorer = build_model(plugins, cfg, frontend, frontend.output_shape(n), num_classes=2)
    x = torch.cat([_tone(440, n, 8), _tone(1250, n, 8)])
    y = torch.tensor([0] * 8 + [1] * 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        losses.append(train_step(model, opt, x, y, False, None)[0].item())
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    with torch.no_grad():
        normal = scorer.score(model(x[:4], False), y[:4], model.loss)
        odd = scorer.score(model(_tone(3000, n, 4, noise=0.3), False), y[:4], model.loss)
    assert odd.min() > normal.max()
