"""Test isolation: a private cache and MLflow store, and only asdbench's own plugins."""

from __future__ import annotations

import pytest

from asdbench.plugins import reset_plugins


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory, tmp_path):
    monkeypatch.chdir(tmp_path)  # MLflow's default store and artifacts land in the working directory
    cache = tmp_path_factory.getbasetemp() / "asdbench-cache"  # shared: generated data is reused
    monkeypatch.setenv("ASDBENCH_CACHE", str(cache))
    monkeypatch.setenv("ASDBENCH_LOAD_PLUGINS", "asdbench")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def tracking_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
