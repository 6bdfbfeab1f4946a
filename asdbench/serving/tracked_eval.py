"""``asdbench eval``: a trained model scored on a data set without training, logged as an MLflow run of its own.

The use: a model trained on the development and additional training sets, scored on the evaluation set
(whose labels come later, or never); or a model scored again on its own test set, which must give its
training run's metrics. The eval run links to the training run (tag ``asdbench.trained_by``) and holds the
official DCASE files: ``anomaly_score_<type>_id_<II>.csv`` and ``decision_result_<type>_id_<II>.csv``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asdbench.api import Clip, Dataset
from asdbench.build import instantiate
from asdbench.config import resolve_dataset
from asdbench.data.examples import sample_loader
from asdbench.data.groups import rule_of
from asdbench.data.machines import select_machines
from asdbench.errors import AsdbenchError
from asdbench.evaluation import results
from asdbench.evaluation.artifacts import draw_figures, write_result_files
from asdbench.evaluation.metrics import Report
from asdbench.evaluation.summary import evaluate_scores, nonfinite
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import describe_device
from asdbench.serving.model import DEFAULT_BATCH, TrainedModel
from asdbench.tracking.store import Store, run_tags


@dataclass(frozen=True)
class EvalRun:
    run_id: str
    scores: list[tuple[Clip, float]]
    report: Report | None


def dataset_values(model: TrainedModel, user: dict[str, Any]) -> dict[str, Any]:
    """The dataset keys of an eval: the training run's own where the data set is the same plugin, then ``user``'s
    (``dataset``, ``dataset.root``, ``dataset.protocol``...)."""
    trained = {k: v for k, v in model.config.values.items() if k == "dataset" or k.startswith("dataset.")}
    if "dataset" in user and user["dataset"] != trained["dataset"]:
        trained = {}
    return {k: v for k, v in {**trained, **user}.items() if v is not None}


def load_eval_dataset(plugins: Plugins, model: TrainedModel, user: dict[str, Any]) -> tuple[Dataset, dict[str, Any]]:
    """The data set to score, narrowed to the machines the model was trained for (``types``, ``ids``), and its
    resolved keys (logged with the eval run)."""
    config = resolve_dataset(plugins, dataset_values(model, user))
    dataset = select_machines(instantiate(plugins, config, "dataset"), model.config.values)
    if dataset.sample_rate != model.sample_rate:
        raise AsdbenchError(f"data set {dataset.name} is at {dataset.sample_rate} Hz; the model was trained at "
                            f"{model.sample_rate} Hz")
    return dataset, config.values


def score_dataset(model: TrainedModel, dataset: Dataset, reporter: Reporter,
                  batch_size: int = DEFAULT_BATCH) -> list[tuple[Clip, float]]:
    """Every test clip of ``dataset`` scored by the model, read by the data set's own loader (as a run reads it)."""
    clips = dataset.clips("test")
    if not clips:
        raise AsdbenchError(f"{dataset.describe()}: no test clips to score in this protocol")
    machines = [(c.machine_type, c.machine_id) for c in clips]
    unknown = sorted(set(machines) - set(model.machines))
    if unknown:
        raise AsdbenchError(f"the model has no {', '.join(model.name(m) for m in unknown)} (it decides for "
                            f"{', '.join(model.name(m) for m in model.machines)}); a model per ID is trained only for the IDs its "
                            "protocol tests: train with the protocol that tests these (e.g. dataset.protocol=eval)")
    with reporter.task("Scoring test clips", len(clips)) as step:
        values = model.score_items(clips, machines, sample_loader(dataset), batch_size, step.advance)
    scores = list(zip(clips, values.tolist()))
    problem = nonfinite(scores, model.unit)
    if problem:
        raise AsdbenchError(problem)
    return scores


def tracked_eval(model: TrainedModel, source: str, dataset: Dataset, dataset_keys: dict[str, Any], reporter: Reporter,
                 store: Store, experiment: str | None = None, out: Path | None = None,
                 batch_size: int = DEFAULT_BATCH) -> EvalRun:
    """Score ``dataset``'s test clips with ``model`` inside a new MLflow run (``asdbench.role=eval``, which
    ``compare`` leaves out of training tables), with metrics where labels exist; ``out``: the official files there
    too. Nothing is written to ``out`` unless every clip scored."""
    trained_by = model.manifest.get("run_id", "")
    tags = run_tags(model.system, dataset.name, describe_device(model.device), model.manifest.get("config_hash", ""),
                    {"asdbench.role": "eval", "asdbench.model": source, "asdbench.trained_by": trained_by})
    with store.open_run(dataset.name, experiment, f"eval-{model.system}-{(trained_by or 'bundle')[:7]}", tags) as tracker:
        reporter.info(f"MLflow run {tracker.run_id} in {store.uri}")
        tracker.log_params({**dataset_keys, "model": source, "trained_by": trained_by,
                            "system": model.system, "batch_size": batch_size})
        scores = score_dataset(model, dataset, reporter, batch_size)
        rule = rule_of(dataset)
        report = evaluate_scores(scores, rule, model.thresholds)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_result_files(folder, scores, report, model.thresholds, rule)
            (folder / "thresholds.json").write_text(json.dumps(model.manifest["thresholds"], indent=2) + "\n")
            tracker.log_artifacts(folder)
            if report is not None:
                tracker.log_metrics(report.flat())
                tracker.set_tag("mlflow.note.content", results.metrics_markdown(report))
            draw_figures(folder, rule, tracker.log_artifacts, lambda message: reporter.info(f"Note: {message}"))
    if out is not None:
        results.write_official(out, scores, model.thresholds, rule)
    return EvalRun(tracker.run_id, scores, report)

