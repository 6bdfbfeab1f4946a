"""Runs through the real runner, loader and caches whose results are known in advance (see known_answer_plugins)."""

import math

import pytest
import torch
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

import known_answer_plugins as known
from asdbench import plugins as plugin_mod
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training.runner import NonFiniteScores, execute


class Recorder(Reporter):
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return known.write_tree(tmp_path_factory.mktemp("known") / "data")


@pytest.fixture
def plugins():
    return build_plugins(extra={"known": (known.PACKAGE, known)})


def run(plugins, tree, reporter=None, checkpoint_dir=None, **values):
    cfg = resolve_runtime(resolve(plugins, "peak-level", set_values={"dataset.root": str(tree), **values}))
    return execute(plugins, make_plan(plugins, cfg), reporter or Reporter(), checkpoint_dir=checkpoint_dir)


def by_clip(result):
    return {str(clip.path): value for clip, value in result.scores}


def test_a_perfect_score_gives_auc_one_and_its_negation_zero(plugins, tree):
    result = run(plugins, tree)
    assert len(result.scores) == 32 and result.report.auc == 1.0 and result.report.pauc == 1.0
    assert all(i.auc == 1.0 for t in result.report.types for i in t.ids)
    negated = run(plugins, tree, **{"scorer.negate": True})
    assert negated.report.auc == 0.0 and negated.report.mauc == 0.0
    assert all(i.auc == 0.0 for t in negated.report.types for i in t.ids)


@pytest.mark.parametrize("values", [{}, {"cache": False}, {"model_per": "id"}, {"model_per": "all"}])
def test_listing_clips_in_another_order_gives_every_clip_the_same_score(plugins, tree, values):
    forward = by_clip(run(plugins, tree, **values))
    backward = run(plugins, tree, dataset="dcase2020t2-reversed", **values)
    assert by_clip(backward) == forward and backward.report.auc == 1.0


def test_model_per_id_trains_a_model_per_tested_id_only(plugins, tree):
    reporter = Recorder()
    result = run(plugins, tree, reporter, model_per="id")
    assert sorted(result.label_maps) == ["fan/id_00", "fan/id_02", "pump/id_00", "pump/id_02"]  # no model for fan id_01
    assert all(len(labels) == 1 for labels in result.label_maps.values()) and result.report.auc == 1.0
    assert any("No model for 1 machine IDs without test clips in this protocol: fan/id_01" in m for m in reporter.messages)
    others = Recorder()
    grouped = run(plugins, tree, others, model_per="id-vs-others")
    assert grouped.label_maps["fan/id_00"] == ["fan/id_00", "fan/id_01", "fan/id_02"]  # id_01 still an outlier class
    assert "fan/id_01" not in grouped.label_maps
    assert any("still train the other IDs' models as outliers" in m for m in others.messages)


def test_short_and_long_clips_are_counted_and_padded_by_the_declared_rule(plugins, tree):
    reporter = Recorder()
    result = run(plugins, tree, reporter)
    # Each of the 5 IDs has one 0.2 s training clip; each of the 4 tested IDs one 0.3 s normal test clip.
    assert (result.padded_clips, result.cut_clips) == (5, 4)
    assert result.clip_seconds == (0.2, 0.3)
    fan = next(m for m in reporter.messages if m.startswith("Clips:"))
    assert "3 shorter clips padded (pad=repeat), 2 longer clips cut" in fan  # fan: ids 00, 01, 02 / tested 00, 02


def test_wav_subtypes_are_read_at_full_scale(plugins, tmp_path):
    """24-bit PCM and 32-bit float files, read through the runner: the same known answer as 16-bit files."""
    tree = known.write_tree(tmp_path / "data", {"fan": "PCM_24", "pump": "FLOAT"})
    result = run(plugins, tree)
    assert result.report.auc == 1.0
    peaks = [v for c, v in result.scores if c.machine_type == "fan" and c.label == 1]
    assert 0.39 <= min(peaks) and max(peaks) <= 0.6  # anomalies' peaks, as written (not rescaled)


def test_scores_are_float32_when_training_in_bf16(plugins, tree):
    result = run(plugins, tree, precision="bf16", **{"scorer.source": "reconstruction"})
    values = torch.tensor([v for _, v in result.scores], dtype=torch.float32)
    assert not torch.equal(values.bfloat16().float(), values)  # bf16 would round every score to 8 mantissa bits


def test_a_dataset_parameter_that_changes_load_makes_new_waveforms(plugins, tree):
    full = by_clip(run(plugins, tree, dataset="dcase2020t2-scaled"))
    half = by_clip(run(plugins, tree, dataset="dcase2020t2-scaled", **{"dataset.gain": 0.5}))
    assert half.keys() == full.keys()
    assert all(half[k] == pytest.approx(full[k] / 2, abs=2 / 32768) for k in full)  # not the cached full-scale waves


def test_non_finite_scores_name_the_ids_and_keep_the_weights(monkeypatch, plugins, tree, tracking_uri, tmp_path):
    # Class 2 of the fan model is fan/id_02 (classes 00, 01, 02); the pump model has classes 0 and 1 only.
    with pytest.raises(NonFiniteScores, match=r"^8 test clips have a non-finite score \(NaN or infinite\): "
                                                r"fan/id_02 \(8 of 8\); no metric") as caught:
        run(plugins, tree, **{"scorer.nan_class": 2})
    assert set(caught.value.result.models) == {"fan", "pump"}
    monkeypatch.setattr(plugin_mod, "_loaded", plugins)
    result = CliRunner().invoke(cli, ["run", "peak-level", "--root", str(tree), "--set", "scorer.nan_class=2",
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "fan/id_02 (8 of 8)" in result.output and "the trained weights are logged" in result.output
    client = MlflowClient(tracking_uri)
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert logged.info.status == "FAILED"
    from safetensors.torch import load_file

    weights = client.download_artifacts(logged.info.run_id, "model", str(tmp_path))
    state = load_file(f"{weights}/weights/fan.safetensors")
    assert set(state) == {"backbone.linear.weight", "backbone.linear.bias"}
    assert torch.equal(state["backbone.linear.weight"], caught.value.result.models["fan"]["backbone.linear.weight"])


def test_a_non_finite_loss_names_the_epoch_and_batch(plugins, tree):
    # 16 fan training clips (ids 00, 02; id 01 has 6 more: 22) in batches of 8: 3 batches an epoch; batch 5 = epoch 2, batch 2.
    with pytest.raises(AsdbenchError, match=r"training of fan diverged: the loss is not finite at epoch 2, batch 2 of 3"):
        run(plugins, tree, **{"loss.nan_at": 5})


def test_oracle_selection_without_test_labels_stops_before_training(plugins, tree, tracking_uri, monkeypatch):
    unlabelled = tree.parent / "unlabelled"
    (unlabelled / "eval_data" / "fan" / "test").mkdir(parents=True)
    for sub in ("train", "test"):
        src = tree / "eval_data" / "fan" / "train"
        for i, wav in enumerate(sorted(src.iterdir())):
            target = unlabelled / "eval_data" / "fan" / sub / (wav.name if sub == "train" else f"id_01_{i:08d}.wav")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wav.read_bytes())
    reporter = Recorder()
    with pytest.raises(AsdbenchError, match=r"select=oracle .* 6 test clips of model 'fan' have none .*--eval-labels"):
        run(plugins, unlabelled, reporter, select="oracle", **{"dataset.protocol": "eval"})
    assert not any(m.startswith("Clips:") for m in reporter.messages)  # nothing was read or trained
    monkeypatch.setattr(plugin_mod, "_loaded", plugins)
    result = CliRunner().invoke(cli, ["run", "peak-level", "--root", str(unlabelled), "--set", "select=oracle",
                                      "--set", "dataset.protocol=eval", "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and "select=oracle" in result.output and "Traceback" not in result.output
    client = MlflowClient(tracking_uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])  # no FAILED run left behind


def test_a_nan_selection_score_is_an_error_not_an_early_epoch(plugins, tree):
    # fan/id_02's clips score NaN: the selection score (AUC + pAUC) cannot be computed at the first evaluation.
    with pytest.raises(AsdbenchError, match=r"select=oracle: the selection score .* of fan is NaN at epoch 1"):
        run(plugins, tree, select="oracle", select_every=1, **{"scorer.nan_class": 2})


def test_the_checkpoint_holds_the_last_epoch_weights_and_optimizer_state(plugins, tree, tmp_path):
    result = run(plugins, tree, checkpoint_dir=tmp_path, epochs=3)
    checkpoint = torch.load(tmp_path / "fan.pt", weights_only=True)
    assert set(checkpoint) == {"format", "format_version", "identity", "epoch", "finished", "kept", "model", "optimizer",
                               "rng", "scheduler", "best"}
    assert (checkpoint["format"], checkpoint["epoch"], checkpoint["finished"], checkpoint["kept"]) == (
        "asdbench-checkpoint", 3, True, 3)
    identity = checkpoint["identity"]
    assert identity["config"]["epochs"] == 3 and identity["config"]["dataset"] == "dcase2020t2"
    assert len(identity["data"]) == 16 and identity["config_hash"] == resolve_runtime(resolve(
        plugins, "peak-level", set_values={"dataset.root": str(tree), "epochs": 3})).hash
    assert set(checkpoint["rng"]) == {"torch", "cuda", "numpy", "python", "batch_order"}
    for name, value in result.models["fan"].items():
        assert torch.equal(checkpoint["model"][name], value)
    steps = {float(s["step"]) for s in checkpoint["optimizer"]["state"].values()}
    assert steps == {9.0}  # 3 epochs x 3 batches of 22 fan clips (8, 8, 6)
    assert math.isclose(checkpoint["optimizer"]["param_groups"][0]["lr"], 1e-2)


def _toy_training(plugins, scheduler, epochs, select="last", evaluate=None):
    """A passthrough model on 16 one-value examples, batches of 8: two steps an epoch, through the real train()."""
    from asdbench.build import build_model
    from asdbench.data.examples import Examples
    from asdbench.runtime import Runtime
    from asdbench.training.loop import settings_from, train

    cfg = resolve_runtime(resolve(plugins, "peak-level", set_values={
        "epochs": epochs, "lr": 1.0, "scheduler": scheduler, "select": select, "select_every": 1}))
    frontend = known.PeakLevel(16000, 100)
    model, _ = build_model(plugins, cfg, frontend, (1,), 1)
    data = Examples(torch.linspace(0.1, 0.9, 16).unsqueeze(1), torch.zeros(16, dtype=torch.long), features_ready=True)
    lrs = []
    kept = train(model, data, settings_from(cfg), Runtime.of(cfg), torch.Generator().manual_seed(0), Reporter(), "toy",
                 lambda epoch, stats: lrs.append(stats["lr"]), None,
                 select_score=evaluate)
    return model, lrs, kept


def test_cosine_learning_rate_per_epoch(plugins):
    _, lrs, _ = _toy_training(plugins, "cosine", 4)
    # lr_e = 0.5 (1 + cos(pi (e - 1) / 4)) for epochs e = 1..4: annealed towards 0 over the run.
    assert lrs == pytest.approx([1.0, 0.8535533905932737, 0.5, 0.14644660940672627])


def test_official_cosine_learning_rate_per_epoch(plugins):
    _, lrs, _ = _toy_training(plugins, "cosine-official", 25)
    # The STgram-MFN code: T_max = batches per epoch (2), stepped once per epoch after epoch 20, so the rate
    # swings with period 4 epochs from epoch 22 on: 1, 0.5, 0, 0.5, ...
    assert lrs == pytest.approx([1.0] * 21 + [0.5, 0.0, 0.5, 1.0], abs=1e-12)


def test_oracle_selection_restores_the_best_epochs_weights(plugins):
    snapshots = []
    scripted = iter([0.2, 0.9, 0.4, 0.1])  # the selection scores of epochs 1-4: epoch 2 is best

    def evaluate(model):
        snapshots.append(model.backbone.linear.weight.detach().clone())
        return next(scripted)

    model, _, kept = _toy_training(plugins, "none", 4, select="oracle", evaluate=evaluate)
    assert kept == 2 and len(snapshots) == 4
    assert not torch.equal(snapshots[1], snapshots[3])  # the weights moved after epoch 2
    assert torch.equal(model.backbone.linear.weight, snapshots[1])  # and were restored to epoch 2's


def test_hold_out_takes_a_fraction_of_every_class_with_two_clips_and_no_clip_twice():
    from asdbench.data.examples import Examples
    from asdbench.training.loop import held_out_rows

    def hold_out(data, fraction, seed):
        kept, held = held_out_rows(data.targets, fraction, seed)
        return data.subset(kept), data.subset(held)

    targets = torch.tensor([0] * 40 + [1] * 3 + [2])
    data = Examples(torch.arange(len(targets)).float().unsqueeze(1), targets, True)
    train, val = hold_out(data, 0.05, seed=0)
    assert sorted(val.targets.tolist()) == [0, 0, 1]  # 5 % of 40 = 2; of 3 at least 1; a single clip stays
    assert sorted(train.inputs.squeeze(1).tolist() + val.inputs.squeeze(1).tolist()) == list(range(44))
    assert torch.equal(hold_out(data, 0.05, seed=0)[1].inputs, val.inputs)  # the seed decides


def test_select_val_keeps_the_epoch_of_lowest_validation_loss_and_never_scores_the_test_set(monkeypatch):
    import asdbench.training.runner as runner_module

    calls = []
    real = runner_module.evaluate_scores
    monkeypatch.setattr(runner_module, "evaluate_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "stgram-mfn-cee", set_values={
        "dataset.size": "tiny", "epochs": 4, "batch_size": 8, "select": "val", "select_every": 1, "clip_seconds": 1.0,
        "val_fraction": 0.25, "lr": 0.05}))
    scores: list[float] = []
    result = execute(plugins, make_plan(plugins, cfg), Reporter(),
                     lambda group, epoch, stats: scores.append(stats["select_score"]))
    assert len(scores) == 4 and len(calls) == 1  # one validation loss per epoch; the test set scored once, at the end
    assert result.selected_epochs == {"all": 1 + scores.index(max(scores))}
