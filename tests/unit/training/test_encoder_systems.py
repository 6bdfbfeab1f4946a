"""The encoder systems end to end on tiny checkpoints written in the official formats: a run that trains nothing
(beats-knn), one that trains LoRA adapters (beats-lora), a transformers encoder (ast-knn); what their bundles keep;
one pass of the encoder for any number of back-ends. Frozen random encoders prove the wiring only, not accuracy."""

from __future__ import annotations

import math

import pytest

from asdbench.cache import cache_dir
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.model import load_model
from asdbench.serving.onnx_export import export_onnx
from asdbench.training.runner import execute
from asdbench_plugins.datasets.synthetic_sections import LAYOUTS
from test_encoders import write_ast, write_beats


@pytest.fixture(scope="module")
def layout_2023(tmp_path_factory):
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    return generate_layout(tmp_path_factory.mktemp("d23") / "tree", "dcase2023t2", "tiny", seed=3)


def _run(system: str, **values):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, system, set_values=values))
    result = execute(plugins, make_plan(plugins, cfg), Reporter())
    assert result.scores and all(math.isfinite(s) for _, s in result.scores)
    return plugins, cfg, result


def _bundle_scores_equal_the_runs(plugins, cfg, result, folder):
    dataset = load_dataset(plugins, cfg)
    bundle = write_bundle(folder, manifest(cfg, plugins, result, dataset.sample_rate, result.num_samples), result.models)
    decided = {d.path: d.score for d in load_model(bundle).score([c.path for c, _ in result.scores])}
    assert {c.path: s for c, s in result.scores} == decided
    return bundle


def _refuses_onnx_export(bundle, system: str, frontend: str, folder):
    """The encoders' Kaldi filter bank (a symmetric Hann window, torch.onnx has no translation of it; BEATs' computed
    clip by clip): the export stops in one line naming the frontend, and leaves no graph behind."""
    with pytest.raises(AsdbenchError) as refused:
        export_onnx(load_model(bundle), folder)
    assert str(refused.value) == (f"{system} cannot be exported to ONNX: its frontend '{frontend}' does not trace "
                                  "(torch.onnx has no translation of aten.hann_window.periodic)")
    assert not list(folder.iterdir())


def _feature_entries() -> int:
    folder = cache_dir() / "features"
    return len(list(folder.iterdir())) if folder.exists() else 0


@pytest.mark.slow
def test_beats_knn_trains_nothing_keeps_only_a_digest_and_serves_any_back_end_from_one_encoder_pass(tmp_path,
                                                                                                  layout_2023):
    checkpoint = write_beats(tmp_path / "BEATs_iter3_tiny.pt")
    common = {"dataset": "dcase2023t2", "dataset.root": str(layout_2023), "frontend.checkpoint": str(checkpoint),
              "frontend.layer": 2}
    plugins, cfg, result = _run("beats-knn", **common, **{"scorer.mix_support": 2})
    assert set(result.selected_epochs.values()) == {0} and result.n_params == 0
    for state in result.models.values():  # the digest and the back-end's fit: no encoder weight
        assert {k for k in state if not k.startswith("scorer_fit.")} == {"frontend.checkpoint_sha256"}
    bundle = _bundle_scores_equal_the_runs(plugins, cfg, result, tmp_path / "bundle")
    _refuses_onnx_export(bundle, "beats-knn", "beats", tmp_path / "onnx")
    entries = _feature_entries()
    assert entries  # the embeddings were cached
    for scorer in ("knn", "mahalanobis"):  # another back-end on the same encoder: no new embeddings computed
        _run("beats-knn", **common, scorer=scorer)
    assert _feature_entries() == entries


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["synthetic", *LAYOUTS])
def test_beats_knn_runs_on_every_dcase_layout(tmp_path, layout):
    """The 2020 layout (IDs, no domains: one memory per ID) and each of 2021-2026 (sections, source and target)."""
    from asdbench_plugins.datasets.synthetic_sections import generate_layout

    checkpoint = str(write_beats(tmp_path / "BEATs_iter3_tiny.pt"))
    data = ({"dataset.size": "tiny"} if layout == "synthetic" else
            {"dataset": layout, "dataset.root": str(generate_layout(tmp_path / "tree", layout, "tiny", seed=5))})
    _run("beats-knn", **data, **{"frontend.checkpoint": checkpoint, "frontend.layer": 1, "scorer.mix_support": 1,
                                 "clip_seconds": 1.0})


@pytest.mark.slow
def test_beats_lora_trains_adapters_and_a_head_and_its_bundle_holds_those_alone(tmp_path, layout_2023):
    checkpoint = write_beats(tmp_path / "BEATs_iter3_tiny.pt")
    plugins, cfg, result = _run("beats-lora", **{
        "dataset": "dcase2023t2", "dataset.root": str(layout_2023), "frontend.checkpoint": str(checkpoint),
        "frontend.lora_rank": 2, "backbone.projection": 16, "epochs": 1, "batch_size": 8, "clip_seconds": 1.0})
    (state,) = result.models.values()
    frontend = {k for k in state if k.startswith("frontend.")}
    assert frontend - {"frontend.checkpoint_sha256"} and all(".lora_" in k for k in frontend - {"frontend.checkpoint_sha256"})
    assert any(k.startswith("backbone.attention") for k in state) and any(k.startswith("loss.") for k in state)
    _bundle_scores_equal_the_runs(plugins, cfg, result, tmp_path / "bundle")


@pytest.mark.slow
def test_ast_knn_runs_on_a_transformers_folder(tmp_path, layout_2023):
    pytest.importorskip("transformers")
    plugins, cfg, result = _run("ast-knn", **{"dataset": "dcase2023t2", "dataset.root": str(layout_2023),
                                              "frontend.checkpoint": str(write_ast(tmp_path / "ast")),
                                              "scorer.mix_support": 1})
    bundle = _bundle_scores_equal_the_runs(plugins, cfg, result, tmp_path / "bundle")
    _refuses_onnx_export(bundle, "ast-knn", "hf-encoder", tmp_path / "onnx")


@pytest.mark.parametrize("system,values,expected", [
    ("beats-knn", {"epochs": 1}, "this model has no weights to train .* set epochs=0"),
    ("beats-lora", {"epochs": 0}, r"epochs=0 trains nothing, but this model has [\d,]+ weights to train"),
    ("beats-knn", {"frontend.tune": "full", "epochs": 0}, "epochs=0 trains nothing"),
])
def test_epochs_0_is_for_a_model_with_nothing_to_train_and_only_for_it(tmp_path, system, values, expected):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, system, set_values={
        "dataset.size": "tiny", "frontend.checkpoint": str(write_beats(tmp_path / "b.pt")), "frontend.layer": 2,
        **values}))
    with pytest.raises(AsdbenchError, match=expected):
        make_plan(plugins, cfg)
