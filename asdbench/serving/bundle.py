"""A trained model as a self-contained folder: safetensors weights and a JSON manifest.

What a bundle holds is what is needed to score new recordings later, without the training
data and without unpickling anything: the weights of every model of the run (safetensors),
and in ``manifest.json`` the resolved config, the plugins and package versions that built
it, each model's classes (machine type / ID, in label order), the IDs it decides for and its
input shape, the sample rate and clip length, and a decision threshold per machine ID
calibrated on training scores (:mod:`asdbench.evaluation.thresholds`) with the rule that made it.

Every run logs its bundle inside an MLflow model, the artifact ``model/``: an MLflow pyfunc
defined from code (:mod:`asdbench.serving.mlflow_model`), with the bundle as its artifact
``model/artifacts/bundle/``. So ``mlflow.pyfunc.load_model("runs:/ID/model")`` and the model
registry work, and :func:`locate` finds the bundle in a run, an MLflow model folder or a
bundle folder alike.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import asdbench
from asdbench import environment
from asdbench.config import COMPONENT_KINDS, RunConfig
from asdbench.data.groups import UNITS, id_name
from asdbench.data.groups import slug as model_slug
from asdbench.errors import AsdbenchError, reason
from asdbench.plugins import Plugins
from asdbench.serving.calibration import threshold_entry

FORMAT = "asdbench-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MLMODEL = "MLmodel"
IN_MLFLOW_MODEL = Path("artifacts") / "bundle"  # where an MLflow model of asdbench keeps its bundle
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")  # the pyfunc's code, copied into every MLflow model
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _version(package: str) -> str:
    return environment.version(package) or "unknown"


def manifest(config: RunConfig, plugins: Plugins, result: Any, sample_rate: int, num_samples: int,
             run_id: str = "") -> dict[str, Any]:
    """The manifest of a finished run's models (``result``: :class:`asdbench.training.runner.RunResult`; ``run_id``: the
    MLflow run that trained them, which ``asdbench eval`` links its runs to)."""
    components = {}
    for kind in COMPONENT_KINDS:
        entry = plugins.registry(kind).get(config.component(kind))
        components[kind] = {"name": entry.name, "package": entry.package, "package_version": _version(entry.package)}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "asdbench_version": asdbench.__version__,
        "system": config.system,
        "run_id": run_id,
        "config_hash": config.hash,
        "config": config.values,
        "plugins": components,
        "packages": {name: _version(name) for name in ("torch", "torchaudio", "numpy", "safetensors")}
        | {"python": platform.python_version()},
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        "models": {
            slug: {"classes": result.label_maps[name], "input_shape": list(result.input_shapes[slug]),
                   "decides": result.decides[name], "weights": f"weights/{slug}.safetensors",
                   "num_samples": result.model_samples.get(slug, num_samples)}
            for name, slug in ((name, model_slug(name)) for name in result.label_maps)
            if slug in result.models
        },
        "threshold": {"rule": config["threshold.rule"], "q": config["threshold.q"]},
        "evaluation": result.rule,
        "unit": UNITS[result.rule],
        "thresholds": {id_name(t, i, UNITS[result.rule]): threshold_entry(value, result.train_scores.get((t, i), []))
                       for (t, i), value in result.thresholds.items()},
    }


def write_weights(folder: Path, models: dict[str, dict[str, torch.Tensor]]) -> dict[str, str]:
    """One safetensors file per model (contiguous copies: channels-last weights are stored in plain layout); the
    SHA-256 of each file, by model."""
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    digests = {}
    for slug, state in models.items():
        path = folder / "weights" / f"{slug}.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))
        digests[slug] = file_sha256(path)
    return digests


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_bundle(folder: Path, manifest_data: dict[str, Any], models: dict[str, dict[str, torch.Tensor]]) -> Path:
    """The bundle in ``folder``: the weights, then the manifest with each weight file's checksum."""
    digests = write_weights(folder, models)
    manifest_data = {**manifest_data, "models": {slug: {**entry, "sha256": digests[slug]} if slug in digests else entry
                                                  for slug, entry in manifest_data["models"].items()}}
    (folder / MANIFEST).write_text(json.dumps(manifest_data, indent=2, sort_keys=True) + "\n")
    return folder


def write_mlflow_model(folder: Path, bundle: Path) -> Path:
    """An MLflow pyfunc model at ``folder`` (which must not exist) carrying ``bundle``.

    Defined from code: MLflow copies :mod:`asdbench.serving.mlflow_model` into the folder and runs it at load time; nothing
    is pickled. Requirements are given, not inferred (inference would load the model in a subprocess)."""
    import mlflow.pyfunc

    manifest_data = read_manifest(bundle)
    mlflow.pyfunc.save_model(
        path=str(folder), python_model=str(MODEL_CODE), artifacts={"bundle": str(bundle)},
        pip_requirements=[f"asdbench=={asdbench.__version__}", f"torch=={manifest_data['packages']['torch']}",
                          f"safetensors=={manifest_data['packages']['safetensors']}"],
    )
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the bundle in ``folder``, checked: an asdbench bundle of a format this version reads, whose
    weight files are all there."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AsdbenchError(f"{folder} is not an asdbench model bundle: it has no {MANIFEST}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AsdbenchError(f"{path} is corrupt: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AsdbenchError(f"{path} is not the manifest of an asdbench model bundle (no \"format\": \"{FORMAT}\")")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise AsdbenchError(f"{folder} is a bundle of format version {version}, written by asdbench "
                            f"{data.get('asdbench_version', '?')}; this asdbench ({asdbench.__version__}) reads "
                            f"versions up to {FORMAT_VERSION}: upgrade asdbench")
    missing = [k for k in ("system", "config", "models", "sample_rate", "num_samples", "thresholds") if k not in data]
    if missing:
        raise AsdbenchError(f"{path} is corrupt: it lacks {', '.join(missing)}")
    _check_shape(path, data)
    for model in data["models"].values():
        if not (folder / model["weights"]).is_file():
            raise AsdbenchError(f"{folder} is incomplete: {model['weights']} is missing")
    return data


# What each part of a manifest must be: a hand-edited or truncated one is one line naming the part, not a traceback
# from deep inside the model's rebuild.
WEIGHT_PATH = re.compile(r"^weights/[\w.\-]+\.safetensors$")


def _check_shape(path: Path, data: dict[str, Any]) -> None:
    def wrong(what: str, expected: str) -> AsdbenchError:
        return AsdbenchError(f"{path} is corrupt: {what} must be {expected}")

    if not isinstance(data["system"], str) or not isinstance(data["config"], dict):
        raise wrong("system and config", "a name and a table")
    for key in ("sample_rate", "num_samples"):
        if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] <= 0:
            raise wrong(key, "a positive whole number")
    if not isinstance(data["models"], dict) or not data["models"]:
        raise wrong("models", "a table of one or more models")
    for slug, model in data["models"].items():
        if not isinstance(model, dict):
            raise wrong(f"models.{slug}", "a table")
        weights = model.get("weights")
        if not isinstance(weights, str) or not WEIGHT_PATH.match(weights):  # inside the bundle: no ../, no /abs
            raise wrong(f"models.{slug}.weights", "a file weights/NAME.safetensors inside the bundle")
        if not isinstance(model.get("classes"), list) or not isinstance(model.get("decides"), list):
            raise wrong(f"models.{slug}.classes and decides", "lists")
        shape = model.get("input_shape")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                  for n in shape):
            raise wrong(f"models.{slug}.input_shape", "a list of positive whole numbers")
        samples = model.get("num_samples", 1)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples <= 0:
            raise wrong(f"models.{slug}.num_samples", "a positive whole number")
        if "sha256" in model and not (isinstance(model["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", model["sha256"])):
            raise wrong(f"models.{slug}.sha256", "a SHA-256 in hex")
    thresholds = data["thresholds"]
    if not isinstance(thresholds, dict) or not all(
            isinstance(t, dict) and isinstance(t.get("value"), (int, float)) and not isinstance(t.get("value"), bool)
            for t in thresholds.values()):
        raise wrong("thresholds", "a table of {\"value\": number} per machine")
    for name, entry in thresholds.items():
        scores = entry.get("train_scores", [])
        if not isinstance(scores, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in scores):
            raise wrong(f"thresholds.{name}.train_scores", "a list of numbers")


def read_weights(folder: Path, model: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One model's weights (safetensors: tensors only, nothing is unpickled), checked against the manifest's checksum
    (bundles written before checksums have none)."""
    path = folder / model["weights"]
    if "sha256" in model and file_sha256(path) != model["sha256"]:
        raise AsdbenchError(f"{path} is corrupt: its SHA-256 differs from the one the manifest records")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AsdbenchError(f"{path} is corrupt: not a readable safetensors file ({exc})") from None


def locate(source: str, download_to: Path, tracking_uri: str | None = None) -> Path:
    """The local bundle folder of ``source``: a bundle folder, an MLflow model folder of asdbench, an MLflow run
    ID, or an MLflow URI (``runs:/ID``, ``runs:/ID/model``, ``models:/NAME/VERSION``), downloaded into
    ``download_to`` from the tracking store (``--tracking-uri``, else ``MLFLOW_TRACKING_URI``)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _bundle_in(path, source)
    if RUN_ID.match(source):
        source = f"runs:/{source}"
    if source.startswith("runs:/") and source.rstrip("/").count("/") == 1:
        source = f"{source.rstrip('/')}/model"
    if not source.startswith(("runs:/", "models:/")):
        raise AsdbenchError(f"model '{source}' is neither a folder, a run ID nor a runs:/ or models:/ URI")
    import mlflow.artifacts

    from asdbench.tracking.store import Store

    store = Store(tracking_uri, create=False)
    store.client  # a missing store is one line here, rather than an empty one created by MLflow
    uri = store.uri
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(download_to), tracking_uri=uri)
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for an unknown run, model or path
        raise AsdbenchError(f"cannot fetch model {source} from {uri}: {reason(exc)}") from None
    return _bundle_in(Path(local), source)


def _bundle_in(folder: Path, source: str) -> Path:
    if (folder / MLMODEL).is_file():
        if not (folder / IN_MLFLOW_MODEL / MANIFEST).is_file():
            raise AsdbenchError(f"{source} is an MLflow model, but not one asdbench wrote (no {IN_MLFLOW_MODEL / MANIFEST})")
        return folder / IN_MLFLOW_MODEL
    if not (folder / MANIFEST).is_file():
        raise AsdbenchError(f"{source} is not an asdbench model bundle: {folder} has no {MANIFEST} (nor an MLflow "
                            f"{MLMODEL})")
    return folder
