import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training.runner import execute
from asdbench.training.step import train_step
from asdbench_plugins.backbones.idnn import InterpolationDNN
from asdbench_plugins.frontends.logspec import LogSpectrogram
from asdbench_plugins.losses.mse import MSELoss
from asdbench_plugins.scorers.recon_error import ReconstructionError


def test_idnn_predicts_the_removed_centre_frame():
    model = InterpolationDNN((309, 640), num_classes=1)
    x = torch.randn(2, 7, 640)
    out = model(x)
    assert out.reconstruction.shape == (2, 7, 128) and out.target.shape == (2, 7, 128)
    assert torch.equal(out.target, x[..., 256:384])  # frame 2 of frames 0..4
    # The centre frame is not an input: changing it changes the target only.
    y = x.clone()
    y[..., 256:384] += 5.0
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x).reconstruction, model(y).reconstruction)
    # AE-ASD sizes: 512 -> 4 x 128 -> 8 -> 4 x 128 -> 128, BatchNorm on every hidden layer.
    dense = 512 * 128 + 128 + 3 * (128 * 128 + 128) + 128 * 8 + 8 + 8 * 128 + 128 + 3 * (128 * 128 + 128) + 128 * 128 + 128
    assert count_parameters(model) == dense + 2 * (8 * 128 + 8)
    with pytest.raises(ValueError, match="odd number of stacked frames"):
        InterpolationDNN((10, 512), num_classes=1)


def test_idnn_loss_falls_and_scores_a_broken_centre_higher():
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 128)
    base = torch.stack([torch.sin(2 * math.pi * (3 + k) * t) for k in range(5)]).flatten()
    x = base + 0.05 * torch.randn(64, 6, 640)
    model = InterpolationDNN((6, 640), 1, hidden=64)
    loss_fn = MSELoss(1, 8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        loss = loss_fn(model(x), torch.zeros(64))
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    model.eval()
    broken = x[:4].clone()
    broken[..., 256:384] = torch.randn(4, 6, 128)
    with torch.no_grad():
        normal = ReconstructionError().score(model(x[:4]), None, loss_fn)
        odd = ReconstructionError().score(model(broken), None, loss_fn)
    assert odd.min() > normal.max()


def test_spec_mfn_feeds_513_bins_and_the_head_follows():
    plugins = build_plugins()
    cfg = resolve(plugins, "spec-mfn")
    frontend = instantiate(plugins, cfg, "frontend", sample_rate=16000, num_samples=160_000)
    assert isinstance(frontend, LogSpectrogram) and frontend.output_shape(160_000) == (1, 513, 313)
    model, _ = build_model(plugins, cfg, frontend, (1, 513, 313), num_classes=41)
    assert model.backbone.gdc_kernel == (33, 20)


@pytest.mark.parametrize("system,frontend", [("logmel-mfn", "logmel"), ("tgram-mfn", "tgram"), ("spec-mfn", "logspec")])
def test_ablations_are_stgram_mfn_with_another_frontend(system, frontend):
    plugins = build_plugins()
    cfg, ref = resolve(plugins, system), resolve(plugins, "stgram-mfn-cee")
    assert cfg.component("frontend") == frontend
    for kind in ("backbone", "loss", "scorer"):
        assert cfg.component(kind) == ref.component(kind)
    for key in ("epochs", "batch_size", "lr", "scheduler", "model_per"):
        assert cfg[key] == ref[key]


ENCODERS = ("beats", "hf-encoder")  # systems on a checkpoint file: tests/unit/training/test_encoder_systems.py


@pytest.mark.slow
@pytest.mark.parametrize("system", sorted(e.name for e in build_plugins().registry("system")
                                          if e.factory.frontend not in ENCODERS))
def test_every_system_trains_and_scores_on_tiny_data(system):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, system, set_values={"dataset.size": "tiny", "epochs": 1, "batch_size": 16}))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    # Every tested ID has its metrics, and they are sklearn's on that ID's clips (no clip lost or misfiled).
    ids = {(t.machine_type, i.machine_id): i for t in result.report.types for i in t.ids}
    assert set(ids) == {("fan", "00"), ("fan", "02"), ("valve", "00"), ("valve", "02")}
    for (mtype, mid), metrics in ids.items():
        rows = [(c.label, s) for c, s in result.scores if (c.machine_type, c.machine_id) == (mtype, mid)]
        assert (metrics.n_normal, metrics.n_anomaly) == (6, 6)
        assert metrics.auc == pytest.approx(roc_auc_score(*zip(*rows)), abs=1e-12)


def test_logmel_patches_every_8_frames():
    from asdbench_plugins.frontends.logmel import LogMelPatches

    frontend = LogMelPatches(16000, 160_000)
    patches = frontend(torch.randn(2, 160_000))
    assert patches.shape == (2, (313 - 64) // 8 + 1, 1, 128, 64)
    short = LogMelPatches(16000, 8000)(torch.randn(1, 8000))
    assert short.shape == (1, 1, 1, 128, 16)  # shorter than a patch: one patch of all frames


def test_mobilenetv2_backbone_is_torchvisions():
    from torchvision.models import mobilenet_v2

    from asdbench_plugins.backbones.mobilenetv2 import MobileNetV2

    model = MobileNetV2((1, 128, 64), num_classes=7)
    reference = mobilenet_v2(weights=None, width_mult=0.5)
    assert count_parameters(model) == count_parameters(reference.features) == 687_680
    assert model.embedding_dim == 1280 and model(torch.randn(3, 1, 128, 64)).embedding.shape == (3, 1280)


def test_patch_scores_are_the_mean_over_patches():
    from asdbench.api import ModelOutput
    from asdbench_plugins.losses.classification import CrossEntropy
    from asdbench_plugins.scorers.neg_log_prob import NegativeLogProbability

    head = CrossEntropy(3, 4)
    emb = torch.randn(2, 5, 4)  # 2 clips x 5 patches
    target = torch.tensor([1, 2])
    scores = NegativeLogProbability().score(ModelOutput(embedding=emb), target, head)
    per_patch = -torch.log_softmax(head.class_scores(ModelOutput(embedding=emb.flatten(0, 1))), 1)
    expected = per_patch[torch.arange(10), target.repeat_interleave(5)].reshape(2, 5).mean(1)
    assert torch.allclose(scores, expected)


def test_mobilenetv2_learns_ids_and_scores_an_odd_clip_higher():
    torch.manual_seed(0)
    plugins = build_plugins()
    cfg = resolve(plugins, "mobilenetv2")
    n = 16000
    frontend = instantiate(plugins, cfg, "frontend", sample_rate=16000, num_samples=n)
    t = torch.arange(n) / 16000
    waves = torch.cat([0.3 * torch.sin(2 * math.pi * f * t) + 0.02 * torch.randn(8, n) for f in (500.0, 1500.0)])
    feats = frontend(waves)  # (16, patches, 1, 128, 32)
    x, y = feats.flatten(0, 1), torch.tensor([0] * 8 + [1] * 8).repeat_interleave(feats.shape[1])
    model, scorer = build_model(plugins, cfg, frontend, tuple(x.shape[1:]), num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        losses.append(train_step(model, opt, x, y, True, None)[0].item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():  # settle the batch-norm running statistics on the trained weights
        for _ in range(30):
            model(x, True)
    model.eval()
    with torch.no_grad():
        own = scorer.score(model(feats[:4], True, frame_axis=True), torch.zeros(4, dtype=torch.long), model.loss)
        odd_waves = 0.3 * torch.sin(2 * math.pi * 1500.0 * t) + 0.02 * torch.randn(4, n)  # sounds like ID 1
        odd = scorer.score(model(frontend(odd_waves), True, frame_axis=True), torch.zeros(4, dtype=torch.long), model.loss)
    assert odd.min() > own.max()


def test_glow_is_invertible_bookkeeping_and_its_likelihood_is_exact():
    from asdbench_plugins.backbones.glow import Glow

    torch.manual_seed(0)
    flow = Glow((6,), num_classes=1, steps=3, hidden=16)
    x = torch.randn(256, 6) * 3 + 1
    flow(x)  # data-dependent ActNorm initialisation
    for p in flow.parameters():  # move off the identity-like initialisation
        p.data += 0.05 * torch.randn_like(p)
    ll = flow(x[:4]).log_likelihood * 6
    # Exact log-likelihood by change of variables: log N(f(x)) + log|det df/dx|.
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0)).embedding[0], x[0])
    z = flow(x[:1]).embedding[0]
    expected = -0.5 * (z.pow(2).sum() + 6 * math.log(2 * math.pi)) + torch.linalg.slogdet(jac)[1]
    assert ll[0].item() == pytest.approx(expected.item(), abs=1e-3)


def test_glows_actnorm_initialises_from_the_first_batch_except_under_torch_export(monkeypatch):
    """A trained flow exports (its ActNorm was initialised by training); tracing never runs the data-dependent
    branch, which ONNX cannot hold, nor touches the scale and shift."""
    from asdbench_plugins.backbones.glow import ActNorm

    x = torch.randn(32, 4) * 3 + 1
    norm = ActNorm(4)
    y, _ = norm(x)
    assert bool(norm.initialized) and torch.allclose(y.mean(0), torch.zeros(4), atol=1e-5)
    fresh = ActNorm(4)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    y, _ = fresh(x)
    assert not bool(fresh.initialized) and torch.equal(y, x)  # bias 0, log-scale 0: left as they were


def test_the_run_seed_initialises_glow_like_every_other_weight():
    """Glow's random rotations come from the run's seed (once a fixed ``backbone.seed``, the same for every seed)."""
    from asdbench.errors import AsdbenchError
    from asdbench_plugins.backbones.glow import Glow

    def rotation(seed):
        torch.manual_seed(seed)
        return Glow((6,), num_classes=1, steps=1, hidden=4).layers[1].lower.detach()

    assert torch.equal(rotation(0), rotation(0)) and not torch.equal(rotation(0), rotation(1))
    with pytest.raises(AsdbenchError, match="unknown config key 'backbone.seed'"):
        resolve(build_plugins(), "glow-aff", set_values={"backbone.seed": 1})


def test_flow_outlier_loss_is_bounded_and_pushes_outliers_down():
    from asdbench.api import ModelOutput
    from asdbench_plugins.losses.flow import FlowOutlierLoss

    loss = FlowOutlierLoss(3, 6, margin=1.0)
    target = torch.tensor([0, 0, 1, 2])
    # Outliers far less likely than the target data: only the target NLL remains.
    far = ModelOutput(log_likelihood=torch.tensor([-1.0, -1.0, -50.0, -80.0]))
    assert loss(far, target).item() == pytest.approx(1.0)
    # Outliers as likely as the target data: the hinge adds exactly the margin.
    close = ModelOutput(log_likelihood=torch.tensor([-1.0, -1.0, -1.0, -1.0]))
    assert loss(close, target).item() == pytest.approx(2.0)
    # Bounded below: pushing outliers ever less likely earns nothing, so the loss cannot run to -inf.
    ll = torch.tensor([-1.0, -1.0, -1e9, -1e9], requires_grad=True)
    value = loss(ModelOutput(log_likelihood=ll), target)
    value.backward()
    assert value.item() == pytest.approx(1.0) and ll.grad[2:].abs().sum() == 0


def test_glow_aff_trains_one_flow_per_id_against_its_types_other_ids():
    from asdbench.data.groups import make_groups
    from asdbench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(size="tiny")
    groups = make_groups(ds.clips("train"), ds.clips("test"), "id-vs-others")
    assert [g.name for g in groups] == ["fan/id_00", "fan/id_02", "valve/id_00", "valve/id_02"]
    fan02 = groups[1]
    assert fan02.classes == (("fan", "02"), ("fan", "00"))
    assert {c.machine_type for c in fan02.train} == {"fan"} and len(fan02.train) == 20
    assert {c.machine_id for c in fan02.test} == {"02"}
    assert sum(fan02.target(c) == 0 for c in fan02.train) == 10


def test_glow_scores_an_off_distribution_vector_higher():
    from asdbench_plugins.backbones.glow import Glow
    from asdbench_plugins.losses.flow import FlowOutlierLoss
    from asdbench_plugins.scorers.nll import NegativeLogLikelihood

    torch.manual_seed(0)
    own = torch.randn(512, 1, 8) * 0.5 + 2.0
    other = torch.randn(512, 1, 8) * 0.5 - 2.0
    x, y = torch.cat([own, other]), torch.tensor([0] * 512 + [1] * 512)
    flow, loss_fn = Glow((8,), 2, steps=2, hidden=32), FlowOutlierLoss(2, 8)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = loss_fn(flow(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with torch.no_grad():
        scorer = NegativeLogLikelihood()
        normal = scorer.score(flow(own[:8].transpose(0, 1)), None, loss_fn)
        odd = scorer.score(flow((torch.randn(8, 8) * 0.5 + 6.0).unsqueeze(0)), None, loss_fn)
    assert odd.item() > normal.item()
