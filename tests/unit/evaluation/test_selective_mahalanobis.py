"""``selective-mahalanobis``, the official DCASE 2023-2026 baseline's MAHALA score: a hand-computed fit and score,
the baseline's own functions (networks/criterion/mahala.py and its covariance pass, restated below) on random
residuals, and ``dcase2023-ae-mahala`` end to end on the 2026 layout, its bundle scoring exactly as its run."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.api import ModelOutput
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.model import load_model
from asdbench.training.runner import execute
from asdbench_plugins.scorers.selective_mahalanobis import SelectiveMahalanobis


def _output(residual: torch.Tensor) -> ModelOutput:
    return ModelOutput(reconstruction=residual, target=torch.zeros_like(residual))


def test_a_hand_computed_fit_and_score():
    """Source rows (1,0), (-1,0), (0,2), (0,-2): mean 0, outer products summed diag(2, 8), over 4 - 1 vectors:
    covariance diag(2/3, 8/3). No target vector: the target domain takes the source covariance. A clip whose mean
    residual is (1, 1) scores 1 / (2/3) + 1 / (8/3) = 1.875 under both."""
    scorer = SelectiveMahalanobis()
    rows = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    state = scorer.fit_outputs([(_output(rows), torch.zeros(4), torch.zeros(4, dtype=torch.bool))], None)
    expected = torch.diag(torch.tensor([2 / 3, 8 / 3], dtype=torch.float64))
    assert torch.allclose(state["covariances"], torch.stack([expected, expected]))
    clip = torch.tensor([[[0.5, 2.0], [1.5, 0.0]]])  # one clip of two vectors, mean residual (1, 1)
    assert scorer.score(_output(clip), torch.zeros(1), None).item() == pytest.approx(1.875)


def _baseline_fit(batches: list[tuple[torch.Tensor, list[bool]]], block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline's covariance pass (dcase2023t2_ae.py, epoch epochs + 1) with mahala.py's cov_v_diff and cov_v."""
    cov_source, cov_target = torch.zeros(block, block), torch.zeros(block, block)
    num_source = num_target = 0
    for diff, is_target in batches:
        is_source = [not t for t in is_target]
        rows = diff[is_source].view(-1, block)
        cov_source += (rows - rows.t().mean(1)).t() @ (rows - rows.t().mean(1))
        num_source += sum(is_source)
        if any(is_target):
            rows = diff[is_target].view(-1, block)
            cov_target += (rows - rows.t().mean(1)).t() @ (rows - rows.t().mean(1))
            num_target += sum(is_target)
    cov_source /= num_source - 1
    cov_target = cov_source.clone() if num_target == 0 else cov_target / (num_target - 1)
    return torch.inverse(cov_source), torch.inverse(cov_target)


def _baseline_score(recon: torch.Tensor, x: torch.Tensor, precision: torch.Tensor, block: int) -> float:
    """mahala.py's mahalanobis(reduction=False) then the test loop's two reductions: the mean of the (rows x rows)
    matrix of delta_i P delta_j."""
    delta = recon.view(-1, block) - x.view(-1, block)
    m_loss = delta @ precision @ delta.t()
    return (torch.sum(torch.mean(m_loss, dim=1)) / len(delta)).item()


def test_the_fit_and_the_score_are_the_baselines():
    """Batches of 640-d residual vectors (5 frames of 128 bins), a few target vectors each, as the covariance pass
    sees them; then clips of 40 vectors scored by the baseline's reductions, the smaller of the two domains."""
    generator = torch.Generator().manual_seed(0)
    scale = torch.linspace(0.5, 2.0, 128).repeat(5)  # bins of different variance: a covariance far from identity
    batches = []
    for _ in range(12):
        # each batch its own offset: centring per batch (the baseline's) and over all rows then differ widely
        diff = torch.randn(256, 640, generator=generator) * scale + 2 * torch.randn(1, 640, generator=generator)
        is_target = (torch.rand(256, generator=generator) < 0.3).tolist()
        diff[torch.tensor(is_target)] *= 1.7  # the target domain's residuals spread more
        batches.append((diff, is_target))
    source, target = _baseline_fit(batches, 128)
    scorer = SelectiveMahalanobis(blocks=5)
    scorer.fit_outputs([(_output(d), torch.zeros(len(d)), torch.tensor(t)) for d, t in batches], None)
    assert torch.allclose(scorer.precisions[0].float(), source, rtol=1e-3, atol=1e-5)
    assert torch.allclose(scorer.precisions[1].float(), target, rtol=1e-3, atol=1e-5)

    clips = torch.randn(6, 40, 640, generator=generator) * scale + 0.3 * torch.randn(6, 1, 640, generator=generator)
    ours = scorer.score(_output(clips), torch.zeros(6), None)
    expected = [min(_baseline_score(c, torch.zeros_like(c), source, 128), _baseline_score(c, torch.zeros_like(c),
                                                                                          target, 128)) for c in clips]
    assert ours.tolist() == pytest.approx(expected, rel=1e-4)
    # the selective part: a clip's score is the smaller of its two domains', and those differ
    assert not torch.allclose(source, target, rtol=0.1)


def test_what_cannot_be_fitted_or_cut_is_one_line():
    with pytest.raises(AsdbenchError, match="was not fitted"):
        SelectiveMahalanobis().score(_output(torch.ones(1, 4)), torch.zeros(1), None)
    with pytest.raises(AsdbenchError, match="cannot be cut into blocks=3"):
        SelectiveMahalanobis(blocks=3).fit_outputs([(_output(torch.ones(2, 4)), torch.zeros(2), torch.zeros(2).bool())],
                                                   None)
    with pytest.raises(AsdbenchError, match="two or more source-domain training vectors"):
        SelectiveMahalanobis().fit_outputs([(_output(torch.ones(2, 4)), torch.zeros(2), torch.ones(2).bool())], None)
    with pytest.raises(AsdbenchError, match="covariance is singular"):  # a constant residual
        SelectiveMahalanobis().fit_outputs([(_output(torch.ones(3, 4)), torch.zeros(3), torch.zeros(3).bool())], None)
    with pytest.raises(AsdbenchError, match="needs a backbone that returns a reconstruction"):
        SelectiveMahalanobis().fit_outputs([(ModelOutput(embedding=torch.ones(2, 4)), torch.zeros(2),
                                             torch.zeros(2).bool())], None)


@pytest.mark.slow
def test_dcase2023_ae_mahala_runs_on_the_2026_layout_and_its_bundle_scores_as_its_run(tmp_path):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    tree = generate_layout(tmp_path / "d26", "dcase2026t2", "tiny", seed=1)
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "dcase2023-ae-mahala", set_values={
        "dataset": "dcase2026t2", "dataset.root": str(tree), "epochs": 2}))
    assert cfg["scorer.blocks"] == cfg["frontend.frames"] == 5
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert result.scores and all(math.isfinite(s) for _, s in result.scores)
    for state in result.models.values():
        covariances = state["scorer_fit.outputs.covariances"]
        assert covariances.shape == (2, 128, 128) and not torch.equal(covariances[0], covariances[1])
    dataset = load_dataset(plugins, cfg)
    folder = write_bundle(tmp_path / "bundle", manifest(cfg, plugins, result, dataset.sample_rate, result.num_samples),
                          result.models)
    decided = {d.path: d.score for d in load_model(folder).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided
