"""Test doubles and helpers that several test modules share."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import mlflow
import torch
from click.testing import CliRunner
from mlflow import MlflowClient

from asdbench.build import build_model
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.plugins import build_plugins
from asdbench.tracking import store as tracking_store


class CountingDataset:
    """The synthetic dataset, counting the clips it decodes."""

    def __init__(self, inner):
        self.inner, self.loads = inner, 0
        self.name, self.sample_rate, self.clip_seconds = inner.name, inner.sample_rate, inner.clip_seconds

    def clips(self, split):
        return self.inner.clips(split)

    def load(self, clip):
        self.loads += 1
        return self.inner.load(clip)

    def describe(self):
        return self.inner.describe()


def tiny_model(system: str = "stgram-mfn-cee", samples: int = 4000):
    plugins = build_plugins()
    cfg = resolve(plugins, system)
    torch.manual_seed(0)
    frontend = plugins.registry("frontend").get(cfg.component("frontend")).factory(16000, samples)
    model, _ = build_model(plugins, cfg, frontend, frontend.output_shape(samples), num_classes=3)
    return model


SUITE = """
name = "{name}"
systems = ["dcase-ae", "idnn"]
seeds = [0]
[set]
"dataset.size" = "tiny"
epochs = {epochs}
checkpoint_every_s = 0
[resources]
num_cpus = 1
"""

def store_client(uri: str) -> MlflowClient:
    """A client of a store that a process the test started may be creating at this moment.

    A plain ``MlflowClient`` migrates a fresh SQLite file itself and loses that race ("table already
    exists"); asdbench's own client takes the creation lock and waits for the other process's store.
    """
    return tracking_store.client(uri)


def runs_of(uri: str):
    client = store_client(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def train_run(tracking_uri: str, system: str, *sets: str) -> str:
    args = ["run", system, "--set", "epochs=1", "--set", "dataset.size=tiny", "--tracking-uri", tracking_uri]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output.strip().split("MLflow run ")[-1].split()[0]

def run_artifacts(tracking_uri: str, run_id: str, folder: Path) -> Path:
    return Path(mlflow.MlflowClient(tracking_uri).download_artifacts(run_id, "", str(folder)))

def logged_scores(artifacts: Path) -> dict[str, float]:
    """``type/file name`` -> score, as the training run logged them."""
    with open(artifacts / "clip_scores.csv", newline="") as fh:
        return {f"{r['machine_type']}/{r['file']}": float(r["score"]) for r in csv.DictReader(fh)}

def tiny_data_root() -> Path:
    return next((Path(os.environ["ASDBENCH_CACHE"]) / "synthetic").glob("tiny-*"))


def crashing_draw(results_folder: Path, figures_folder: Path, unit: str) -> list[str]:
    """A figure step that dies as compiled code does (t-SNE's segfault): the process ends on SIGSEGV."""
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)
    return []
