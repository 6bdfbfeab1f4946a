import numpy as np
import torch
import torchaudio

from asdbench.build import count_parameters
from asdbench.config import resolve
from asdbench.plugins import build_plugins
from asdbench_plugins.backbones.dense_ae import DenseAutoencoder
from asdbench_plugins.frontends.logmel import LogMel, LogMelFrames
from asdbench_plugins.losses.mse import MSELoss
from asdbench_plugins.scorers.recon_error import ReconstructionError


def test_parameter_count_matches_the_keras_baseline():
    # Keras reports 269,992 params of which 267,928 trainable; the other 2,064 are the
    # batch norms' moving means and variances, which torch keeps as buffers.
    model = DenseAutoencoder((309, 640), num_classes=1)
    assert count_parameters(model) == 267_928
    buffers = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert count_parameters(model) + buffers == 269_992


def test_logmel_is_10log10_of_torchaudio_mel_with_floor():
    wave = torch.randn(2, 16000)
    frontend = LogMel(16000, 16000)
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=512, n_mels=128)(wave)
    expected = 10 * torch.log10(torch.clamp(mel, min=1e-10))
    assert torch.allclose(frontend(wave)[:, 0], expected, atol=1e-4)
    assert frontend.output_shape(160000) == (1, 128, 313)  # a 10 s clip: 313 frames


def test_frames_are_stacked_in_time_order():
    frontend = LogMelFrames(16000, 8000, frames=5, n_mels=8)
    wave = torch.randn(1, 8000)
    logmel = frontend.log_mel(wave)[0]  # (8, N)
    vectors = frontend(wave)[0]  # (N-4, 40)
    assert vectors.shape == (logmel.shape[1] - 4, 40)
    assert torch.equal(vectors[3, :8], logmel[:, 3])
    assert torch.equal(vectors[3, 32:], logmel[:, 7])


def test_dcase_ae_system_reproduces_baseline_features():
    cfg = resolve(build_plugins(), "dcase-ae")
    assert cfg["frontend.mel_scale"] == "slaney" and cfg["frontend.norm"] == "slaney"
    assert cfg["frontend.offset"] == np.finfo(float).eps and cfg["frontend.amin"] == 0.0
    frontend = LogMelFrames(16000, 160000, **cfg.params("frontend"))
    assert frontend.output_shape(160000) == (309, 640)  # 313 frames - 5 + 1 vectors of 5 x 128


def test_loss_falls_and_scores_rank_an_outlier_higher():
    torch.manual_seed(0)
    normal = torch.randn(64, 10, 16) * 0.5 + torch.linspace(-1, 1, 16)
    model = DenseAutoencoder((10, 16), num_classes=1, hidden=32, bottleneck=4)
    loss_fn = MSELoss(1, 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = model(normal)
        loss = loss_fn(out, torch.zeros(64))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        test = torch.cat([normal[:4], normal[:4] + 3 * torch.randn(4, 10, 16)])
        scores = ReconstructionError().score(model(test), torch.zeros(8), loss_fn)
    assert scores.shape == (8,)
    assert scores[4:].min() > scores[:4].max()
