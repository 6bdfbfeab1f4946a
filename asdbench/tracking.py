"""MLflow bookkeeping: one run per ``asdbench run``; it ends FINISHED, FAILED or KILLED, never RUNNING.

The store is MLflow's own default (``sqlite:///mlflow.db`` in the working directory)
unless ``MLFLOW_TRACKING_URI`` or ``--tracking-uri`` names another.
"""

from __future__ import annotations

import logging
import platform
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import torch

import asdbench

for _name in ("mlflow", "alembic", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def git_commit() -> str | None:
    """The commit of the asdbench source tree, when it is a git checkout."""
    source = Path(asdbench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_tags(system: str, dataset: str, device: str, config_hash: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    tags = {
        "asdbench.system": system,
        "asdbench.dataset": dataset,
        "asdbench.version": asdbench.__version__,
        "asdbench.device": device,
        "asdbench.config_hash": config_hash,
        "asdbench.torch": torch.__version__,
        "asdbench.python": platform.python_version(),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update(extra or {})
    return tags


def experiment_name(dataset: str) -> str:
    return f"asdbench/{dataset}"


@contextmanager
def tracked_run(tracking_uri: str | None, experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[Any]:
    """Start a run; end it FINISHED on success, KILLED on Ctrl-C, FAILED on any error."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=run_name, tags=tags)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def log_params(values: dict[str, Any]) -> None:
    mlflow.log_params({k: ("" if v is None else v) for k, v in values.items()})


def log_epoch(group: str, epoch: int, stats: dict[str, float], single_group: bool) -> None:
    suffix = "" if single_group else f"/{group}"
    mlflow.log_metrics({f"train/{k}{suffix}": v for k, v in stats.items()}, step=epoch)
