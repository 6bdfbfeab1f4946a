"""A trained model as a self-contained folder: safetensors weights and a JSON manifest.

What a bundle holds is what is needed to score new recordings later, without the training
data and without unpickling anything: the weights of every model of the run (safetensors),
and in ``manifest.json`` the resolved config, the plugins and package versions that built
it, each model's classes (machine type / ID, in label order) and input shape, the sample
rate and clip length, and a decision threshold per machine ID calibrated on training scores
(:mod:`asdbench.thresholds`) with the rule that made it. Every run logs its bundle as the
MLflow artifact ``model/``.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import asdbench
from asdbench.config import COMPONENT_KINDS, RunConfig
from asdbench.groups import slug as model_slug
from asdbench.plugins import Plugins

FORMAT = "asdbench-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def manifest(config: RunConfig, plugins: Plugins, result: Any, sample_rate: int, num_samples: int) -> dict[str, Any]:
    """The manifest of a finished run's models (``result``: :class:`asdbench.runner.RunResult`)."""
    components = {}
    for kind in COMPONENT_KINDS:
        entry = plugins.registry(kind).get(config.component(kind))
        components[kind] = {"name": entry.name, "package": entry.package, "package_version": _version(entry.package)}
    counts = {key: len(values) for key, values in result.train_scores.items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "asdbench_version": asdbench.__version__,
        "system": config.system,
        "config_hash": config.hash,
        "config": config.values,
        "plugins": components,
        "packages": {name: _version(name) for name in ("torch", "torchaudio", "numpy", "safetensors")}
        | {"python": platform.python_version()},
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        "models": {
            slug: {"classes": result.label_maps[name], "input_shape": list(result.input_shapes[slug]),
                   "weights": f"weights/{slug}.safetensors"}
            for name, slug in ((name, model_slug(name)) for name in result.label_maps)
            if slug in result.models
        },
        "threshold": {"rule": config["threshold.rule"], "q": config["threshold.q"]},
        "thresholds": {f"{t}/id_{i}": {"value": value, "n_train": counts.get((t, i), 0)}
                       for (t, i), value in result.thresholds.items()},
    }


def write_weights(folder: Path, models: dict[str, dict[str, torch.Tensor]]) -> None:
    """One safetensors file per model (contiguous copies: channels-last weights are stored in plain layout)."""
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    for slug, state in models.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(folder / "weights" / f"{slug}.safetensors"))


def write_bundle(folder: Path, manifest_data: dict[str, Any], models: dict[str, dict[str, torch.Tensor]]) -> Path:
    write_weights(folder, models)
    (folder / MANIFEST).write_text(json.dumps(manifest_data, indent=2, sort_keys=True) + "\n")
    return folder
