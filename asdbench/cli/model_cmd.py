"""Commands that use a trained model: ``score`` new recordings, ``eval`` it on a data set, ``export`` its bundle."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from asdbench.atomic import write_text
from asdbench.cli.output import console, err_console, metrics_table
from asdbench.config import parse_assignments
from asdbench.errors import AsdbenchError
from asdbench.evaluation.thresholds import RULES
from asdbench.plugins import get_plugins
from asdbench.progress import RichReporter
from asdbench.serving.calibration import Override, Rule
from asdbench.serving.decision import DEFAULT_BATCH, Decision, wav_files

MODEL_HELP = "MODEL: a run ID, runs:/ID, models:/NAME/VERSION, or a bundle folder ('asdbench export')."
OUTPUT_FORMATS = (".csv", ".json")


def threshold_options(fn):
    for option in reversed([
        click.option("--threshold", type=float, default=None,
                     help="Decide with this threshold for every machine instead of the calibrated ones."),
        click.option("--fpr", type=click.FloatRange(0, 1, max_open=True), default=None,
                     help="Decide with the threshold that flags at most this share of the model's normal scores "
                     "(e.g. 0.01), per machine."),
    ]):
        fn = option(fn)
    return fn


def model_options(fn=None, *, batch_size: int = DEFAULT_BATCH):
    if fn is None:
        return lambda f: model_options(f, batch_size=batch_size)
    for option in reversed([
        click.option("--batch-size", type=click.IntRange(min=1), default=batch_size, show_default=True,
                     help="Clips scored at once (memory holds one batch of audio)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N."),
        click.option("--tracking-uri", default=None,
                     help="MLflow store of MODEL (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    ]):
        fn = option(fn)
    return fn


def _load(model: str, device: str, tracking_uri: str | None, onnx: bool = False):
    """The trained model (torch and MLflow load here, not at import: the commands' help does not wait for them);
    with ``onnx``, an exported ONNX folder is read by ONNX Runtime alone, without torch."""
    from asdbench.serving.onnx_model import OnnxModel, is_onnx_folder

    if is_onnx_folder(model):
        if not onnx:
            raise AsdbenchError(f"{model} is an ONNX export: `asdbench score` scores it; this command takes a run or a "
                                "bundle")
        return OnnxModel(Path(model).expanduser())
    from asdbench.serving.model import load_model

    with err_console.status(f"Loading model {model}..."):
        return load_model(model, device, tracking_uri)


def _rows(decisions: list[Decision]) -> list[dict]:
    return [{"file": str(d.path), "machine_type": d.machine_type, "machine_id": d.machine_id, "score": d.score,
             "threshold": d.threshold, "decision": int(d.anomalous)} for d in decisions]


def write_rows(path: Path, decisions: list[Decision]) -> None:
    """``.csv`` (a header, one row per file) or ``.json`` (a list of objects), written whole or not at all."""
    rows = _rows(decisions)
    if path.suffix.lower() == ".json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "score": repr(r["score"]), "threshold": repr(r["threshold"])} for r in rows)
        text = buffer.getvalue()
    write_text(path, text)


def _file_table(decisions: list[Decision]) -> Table:
    table = Table(title=f"{len(decisions)} files scored")
    table.add_column("file", overflow="fold")
    for name in ("type", "ID", "score", "threshold", "decision"):
        table.add_column(name, justify="right" if name in ("score", "threshold") else "left", no_wrap=True)
    for d in decisions:
        table.add_row(str(d.path), d.machine_type, d.machine_id, f"{d.score:.6g}", f"{d.threshold:.6g}",
                      "[red]anomaly[/red]" if d.anomalous else "normal")
    return table


def _summary_table(decisions: list[Decision], output: Path, label: Callable[[tuple[str, str]], str]) -> Table:
    table = Table(title=f"{len(decisions)} files scored; one row per file in {output}")
    for name in ("machine", "files", "anomalous", "threshold"):
        table.add_column(name, justify="left" if name == "machine" else "right")
    files = Counter((d.machine_type, d.machine_id) for d in decisions)
    flagged = Counter((d.machine_type, d.machine_id) for d in decisions if d.anomalous)
    thresholds = {(d.machine_type, d.machine_id): d.threshold for d in decisions}
    for machine in sorted(files):
        table.add_row(label(machine), str(files[machine]), str(flagged[machine]), f"{thresholds[machine]:.6g}")
    return table


@click.command("score", epilog=MODEL_HELP)
@click.argument("model")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--machine-type", default=None, help="Machine type of every file (default: from each file's folders).")
@click.option("--machine-id", default=None, help="Machine ID of every file, e.g. 00 (default: from each file name).")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write one row per file to a .csv or .json file (the terminal then shows a summary per ID).")
@click.option("--skip-bad-files", is_flag=True,
              help="Leave out files that cannot be scored (a bad header, undecodable or non-finite samples), listing "
              "each with its reason, and score the others; without it the first bad file stops the job before "
              "anything is written.")
@threshold_options
@model_options
def score_command(model: str, files: tuple[Path, ...], machine_type: str | None, machine_id: str | None,
                  output: Path | None, skip_bad_files: bool, threshold: float | None, fpr: float | None,
                  batch_size: int, device: str, tracking_uri: str | None) -> None:
    """Score WAV FILES (or folders of them) with a trained MODEL: score, threshold and decision per file.
    Only the start of each file that the model's clip length needs is read; links that lead out of a folder named
    are not followed."""
    if output is not None and output.suffix.lower() not in OUTPUT_FORMATS:
        raise AsdbenchError(f"--output {output}: write a .csv or .json file")
    override = Override(threshold, fpr)
    started = time.perf_counter()
    outside: list[Path] = []
    paths = wav_files(files, outside.append)
    if outside:
        err_console.print(f"[yellow]Note:[/yellow] {len(outside)} links lead out of the folders named and are not "
                          f"followed, e.g. {outside[0]}", highlight=False)
    trained = _load(model, device, tracking_uri, onnx=True)
    trained.override_thresholds(override)
    with RichReporter(err_console).task("Scoring", len(paths)) as step:
        scored = trained.score_files(paths, machine_type, machine_id, batch_size, step.advance, skip_bad_files)
    _list_skipped(scored.skipped)
    decisions = scored.decisions
    if not decisions:
        raise AsdbenchError(f"none of the {len(paths)} files could be scored")
    if output is not None:
        write_rows(output, decisions)
        console.print(_summary_table(decisions, output, trained.name))
    else:
        console.print(_file_table(decisions))
    flagged = sum(d.anomalous for d in decisions)
    skipped = f", {len(scored.skipped)} bad files skipped" if scored.skipped else ""
    err_console.print(f"{flagged} of {len(decisions)} files anomalous{skipped} ({override.describe()}); "
                      f"{time.perf_counter() - started:.1f} s ({trained.system}, {trained.device})", highlight=False)


def _list_skipped(skipped: list[tuple[Path, str]]) -> None:
    for _, why in skipped:
        err_console.print(f"[yellow]Skipped[/yellow] {why}", highlight=False, soft_wrap=True)


@click.command("calibrate", epilog=MODEL_HELP)
@click.argument("model")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The recalibrated model: a new bundle folder (MODEL is left as it is).")
@click.option("--rule", type=click.Choice(RULES), default=None,
              help="Threshold rule on the recordings' scores (default: the rule MODEL was calibrated with).")
@click.option("--q", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="The rule's quantile (default: MODEL's, e.g. 0.9: about one normal recording in ten flagged).")
@click.option("--fpr", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Instead of a rule: the threshold that flags at most this share of the recordings.")
@click.option("--machine-type", default=None, help="Machine type of every file (default: from each file's folders).")
@click.option("--machine-id", default=None, help="Machine ID of every file, e.g. 00 (default: from each file name).")
@click.option("--skip-bad-files", is_flag=True, help="Leave out files that cannot be scored, listing each.")
@model_options
def calibrate_command(model: str, files: tuple[Path, ...], out: Path, rule: str | None, q: float | None,
                      fpr: float | None, machine_type: str | None, machine_id: str | None, skip_bad_files: bool,
                      batch_size: int, device: str, tracking_uri: str | None) -> None:
    """Refit MODEL's decision thresholds on normal recordings of a site (FILES or folders), without retraining:
    a new bundle in --out whose manifest records the data, the rule and the time."""
    if fpr is not None and (rule is not None or q is not None):
        raise AsdbenchError("--fpr sets the threshold itself: give it without --rule and --q")
    _check_new_folder(out)
    paths = wav_files(files)
    trained = _load(model, device, tracking_uri)
    calibrated_by = Rule(rule or trained.manifest["threshold"]["rule"], q or trained.manifest["threshold"]["q"], fpr)
    before = dict(trained.thresholds)
    with RichReporter(err_console).task("Scoring normal recordings", len(paths)) as step:
        scored = trained.calibrate(paths, calibrated_by, files, machine_type, machine_id, batch_size, step.advance,
                                   skip_bad_files)
    _list_skipped(scored.skipped)
    counts = Counter((d.machine_type, d.machine_id) for d in scored.decisions)
    table = Table(title=f"Thresholds of {trained.system} from {len(scored.decisions)} normal recordings "
                        f"({', '.join(f'{k}={v}' for k, v in calibrated_by.record().items())})")
    for name in ("machine", "recordings", "before", "after", "flagged now"):
        table.add_column(name, justify="left" if name == "machine" else "right")
    for machine in trained.machines:
        n = counts.get(machine, 0)
        flagged = sum(d.score > trained.thresholds[machine] for d in scored.decisions
                      if (d.machine_type, d.machine_id) == machine)
        table.add_row(trained.name(machine), str(n), f"{before[machine]:.6g}",
                      f"{trained.thresholds[machine]:.6g}" if n else "[dim]kept[/dim]", f"{flagged}/{n}" if n else "")
    console.print(table)
    _write_bundle_folder(trained, out)
    kept = [trained.name(m) for m in trained.machines if not counts.get(m)]
    note = f"; no recordings of {', '.join(kept)}: their thresholds are kept" if kept else ""
    err_console.print(f"Wrote the recalibrated model to {out}{note}", highlight=False)


@click.command("eval", epilog=MODEL_HELP)
@click.argument("model")
@click.option("--dataset", "-d", default=None, help="Dataset plugin (default: the one MODEL was trained on).")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset folder (sets dataset.root).")
@click.option("--protocol", default=None, help="The data set's protocol, e.g. eval (sets dataset.protocol).")
@click.option("--eval-labels", type=click.Path(path_type=Path), default=None,
              help="Evaluation-set ground truth, eval_data_list.csv or its folder (sets dataset.eval_labels).")
@click.option("--set", "assignments", multiple=True, metavar="dataset.KEY=VALUE", help="A dataset key (repeatable).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also write anomaly_score_* and decision_result_* CSVs here, for the official evaluator.")
@click.option("--experiment", default=None, help="MLflow experiment (default: asdbench/<dataset>).")
@model_options
def eval_command(model: str, dataset: str | None, root: Path | None, protocol: str | None, eval_labels: Path | None,
                 assignments: tuple[str, ...], out: Path | None, experiment: str | None, batch_size: int, device: str,
                 tracking_uri: str | None) -> None:
    """Score a trained MODEL on a data set's test clips without training, logged as a new MLflow run."""
    from asdbench.serving.tracked_eval import load_eval_dataset, tracked_eval
    from asdbench.tracking.store import Store

    started = time.perf_counter()
    user = parse_assignments(assignments)
    wrong = sorted(k for k in user if k != "dataset" and not k.startswith("dataset."))
    if wrong:
        raise AsdbenchError(f"eval takes dataset keys only (the model's own are fixed): {', '.join(wrong)}")
    for key, value in (("dataset", dataset), ("dataset.root", root), ("dataset.protocol", protocol),
                       ("dataset.eval_labels", eval_labels)):
        if value is not None:
            user[key] = str(value)
    trained = _load(model, device, tracking_uri)
    data, keys = load_eval_dataset(get_plugins(), trained, user)
    err_console.print(f"[bold]{trained.system}[/bold] (trained in run {trained.manifest.get('run_id') or '?'}) on "
                      f"{data.describe()}", highlight=False)
    run = tracked_eval(trained, model, data, keys, RichReporter(err_console), Store(tracking_uri), experiment, out,
                       batch_size)
    if run.report is not None:
        console.print(metrics_table(run.report, f"{trained.system} on {data.name} (eval)"))
    else:
        console.print("No labelled test clips: scores and decisions written, no metrics computed.")
    where = f"; official files in {out}" if out is not None else ""
    err_console.print(f"Done in {time.perf_counter() - started:.1f} s; MLflow run {run.run_id}{where}", highlight=False)


def _check_new_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise AsdbenchError(f"{folder} exists and is not empty; choose a new folder")


def _write_bundle_folder(trained, folder: Path) -> None:
    """The model as a bundle in ``folder``, renamed into place whole: no half-written bundle is ever left there."""
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    trained.save(partial)
    if folder.exists():
        folder.rmdir()
    os.replace(partial, folder)


@click.command("export", epilog=MODEL_HELP)
@click.argument("model")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["bundle", "onnx"]), default="bundle", show_default=True,
              help="bundle: manifest.json + safetensors weights (scored with asdbench and torch); onnx: one ONNX graph "
              "per model from the waveform to the score, scored by 'asdbench score FOLDER' with onnxruntime alone.")
@click.option("--int8", "calibration", default=None, type=click.Path(path_type=Path, exists=True),
              help="With --format onnx: quantise the backbone to INT8 (weights and activations), its activation "
              "ranges calibrated on the normal recordings in this folder (WAVs of each machine, named as for score).")
@click.option("--tracking-uri", default=None, help="MLflow store of MODEL (default: MLFLOW_TRACKING_URI).")
def export_command(model: str, folder: Path, fmt: str, calibration: Path | None, tracking_uri: str | None) -> None:
    """Write a trained MODEL as a bundle FOLDER (manifest.json + safetensors weights), to score without MLflow."""
    if calibration is not None and fmt != "onnx":
        raise AsdbenchError("--int8 quantises an ONNX export: add --format onnx")
    _check_new_folder(folder)
    calibration_files = wav_files([calibration]) if calibration is not None else []
    trained = _load(model, "cpu", tracking_uri)
    if fmt == "onnx":
        from asdbench.serving.onnx_export import export_onnx
        from asdbench.serving.onnx_quantize import check_calibration, quantize_int8

        if calibration_files:
            check_calibration(trained, calibration_files, calibration)

        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            with err_console.status(f"Exporting {trained.system} to ONNX..."):
                export_onnx(trained, partial)
            if calibration_files:
                with err_console.status(f"Quantising to INT8 on {len(calibration_files)} recordings..."):
                    quantize_int8(partial, calibration_files, calibration)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if folder.exists():
            folder.rmdir()
        os.replace(partial, folder)
        kind = "INT8 ONNX" if calibration_files else "ONNX"
        console.print(f"Wrote {trained.system} as {kind} ({len(trained.machines)} machine IDs) to {folder}; score it "
                      f"with `asdbench score {folder} FILES` (onnxruntime, no torch)", highlight=False)
        return
    _write_bundle_folder(trained, folder)
    console.print(f"Wrote {trained.system} model ({len(trained.machines)} machine IDs) to {folder}", highlight=False)
