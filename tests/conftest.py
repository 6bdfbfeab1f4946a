"""Test isolation: a private cache and MLflow store, and only asdbench's own plugins; and the two kinds of test.

``tests/unit/<layer>/`` mirrors the core's layers and runs in this process; ``tests/integration/`` holds what
starts other processes (the command line in a fresh interpreter, torchrun, Ray, pip) or needs a GPU, marked
``integration`` here: ``pytest tests/unit`` is the quick loop while working on one layer.

A new SQLite MLflow store costs seconds of schema migrations, and dozens of tests each make one: the session
migrates one empty store, and a test's store starts as a copy of it (in this process; subprocesses make their
own). What the tests check of a store is unchanged: it is MLflow's own, made by the installed MLflow.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from asdbench.plugins import reset_plugins
from asdbench.tracking import store as tracking

INTEGRATION = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker computes on its share of the cores: torch's threads here and in the processes
    a test starts (OMP_NUM_THREADS), so two workers on two cores do not fight over them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--exports", action="store_true",
                     help="also export every built-in system to ONNX (tests marked exports; minutes on 2 cores)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    every_export = config.getoption("--exports")
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
        if "exports" in item.keywords and not every_export:
            item.add_marker(pytest.mark.skip(reason="the ONNX export of every built-in system: pytest --exports"))


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory) -> Path:
    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    tracking.client(f"sqlite:///{database}")
    return database


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory, tmp_path, _empty_store):
    monkeypatch.chdir(tmp_path)  # MLflow's default store and artifacts land in the working directory
    cache = tmp_path_factory.getbasetemp() / "asdbench-cache"  # shared: generated data is reused
    monkeypatch.setenv("ASDBENCH_CACHE", str(cache))
    monkeypatch.setenv("ASDBENCH_LOAD_PLUGINS", "asdbench")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ASDBENCH_FIGURES", "0")  # a second or more per run; the tests of figures switch them on
    make_client = tracking.client

    def client_of_a_copied_store(tracking_uri, create=True):
        database = tracking.sqlite_database(tracking.resolve_tracking_uri(tracking_uri))
        if create and database is not None and not database.exists() and database.parent.is_dir():
            shutil.copyfile(_empty_store, database)
        return make_client(tracking_uri, create)

    monkeypatch.setattr(tracking, "client", client_of_a_copied_store)
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture(scope="session")
def dcase_ae_run(tmp_path_factory) -> tuple[str, str]:
    """One dcase-ae run on the tiny synthetic set (1 epoch), shared by the tests that only read it (score, export,
    monitor, serve it): its run ID and store. Made in the environment ``_isolated`` gives each test, which a session
    fixture runs before."""
    from support import train_run

    folder = tmp_path_factory.mktemp("dcase-ae-run")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("ASDBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "asdbench-cache"))
        patch.setenv("ASDBENCH_LOAD_PLUGINS", "asdbench")
        patch.setenv("ASDBENCH_FIGURES", "0")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        reset_plugins()
        try:
            run_id = train_run(uri, "dcase-ae")
        finally:
            reset_plugins()
    return run_id, uri


@pytest.fixture
def tracking_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
