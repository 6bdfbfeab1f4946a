"""The MLflow store, as one :class:`Store` object per command; one MLflow run per ``asdbench run``, which ends
FINISHED, FAILED or KILLED, never RUNNING.

The store is MLflow's own default (``sqlite:///mlflow.db`` in the working directory)
unless ``MLFLOW_TRACKING_URI`` or ``--tracking-uri`` names another.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import platform
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
from mlflow.entities import Metric, Param, Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import asdbench
from asdbench import environment
from asdbench.errors import AsdbenchError, reason
from asdbench.interrupts import signals_as_interrupt, uninterrupted

# MLflow draws a tqdm bar for every artifact download wherever tqdm is installed (transformers brings it): a bar on
# stderr at each summary table and export, and a stream of carriage returns in a batch job's log. asdbench reports
# its own progress; a user who wants MLflow's bars sets the variable.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

ENV_TAG = "asdbench.env."  # + a package name: its version when the run started

for _name in ("mlflow", "alembic", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# It logs each database error with its traceback before raising it; asdbench turns the error into one line.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


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
    """A run's tags, among them the versions of the packages that can move its numbers (``asdbench.env.numpy``),
    which ``compare`` reads to say when the rows of a table were computed with different ones."""
    tags = {
        "asdbench.system": system,
        "asdbench.dataset": dataset,
        "asdbench.version": asdbench.__version__,
        "asdbench.device": device,
        "asdbench.config_hash": config_hash,
        "asdbench.python": platform.python_version(),
        **{f"{ENV_TAG}{name}": found for name, found in environment.versions().items() if found},
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update(extra or {})
    return tags


def environment_changes(tags: dict[str, str]) -> list[str]:
    """The numeric packages whose installed version differs from a run's ``tags`` (``numpy 2.3.0 -> 2.4.6``)."""
    now = environment.versions()
    return [f"{name} {tags[ENV_TAG + name]} -> {now[name] or 'not installed'}" for name in now
            if ENV_TAG + name in tags and tags[ENV_TAG + name] != now[name]]


def experiment_name(dataset: str) -> str:
    return f"asdbench/{dataset}"


class Tracker:
    """One MLflow run, written through an explicit client: no global MLflow state is touched,
    so library callers and tests can use several stores in one process."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, values: dict[str, Any]) -> None:
        params = [Param(k, "" if v is None else str(v)) for k, v in values.items()]
        for start in range(0, len(params), 100):
            with uninterrupted():
                self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_metrics(self, values: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for start in range(0, len(metrics), 1000):
            with uninterrupted():
                self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_epoch(self, group: str, epoch: int, stats: dict[str, float], single_group: bool) -> None:
        suffix = "" if single_group else f"/{group}"
        self.log_metrics({f"train/{k}{suffix}": v for k, v in stats.items()}, step=epoch)

    def logged_epochs(self, group: str, single_group: bool) -> set[int]:
        """The epochs of ``group`` whose training loss this run has logged already."""
        key = "train/loss" if single_group else f"train/loss/{group}"
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def log_text(self, text: str, path: str) -> None:
        with uninterrupted():
            self.client.log_text(self.run_id, text, path)

    def log_artifacts(self, folder: Path) -> None:
        with uninterrupted():
            self.client.log_artifacts(self.run_id, str(folder))

    def set_tag(self, key: str, value: str) -> None:
        with uninterrupted():
            self.client.set_tag(self.run_id, key, value)


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db``)."""
    return tracking_uri or mlflow.get_tracking_uri()


def sqlite_database(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store URI; None for any other store."""
    return Path(uri[len("sqlite:///"):].split("?")[0]) if uri.startswith("sqlite:///") else None


# The line of an SQLAlchemy error that says what failed, "(sqlite3.OperationalError) unable to open database file",
# wherever SQLAlchemy's notes about autoflushes and links put it in the message.
DATABASE_ERROR = re.compile(r"\(\w+(?:\.\w+)*(?:Error|Exception)\) [^\n]*")


def store_reason(exc: BaseException) -> str:
    """One line saying why a store failed: the database's own error where the message holds one."""
    found = DATABASE_ERROR.search(str(exc))
    return found.group(0)[:200] if found else reason(exc)


# How long a remote store may take to accept a connection before a command says it cannot be reached: MLflow's own
# client retries with backoff for minutes.
CONNECT_TIMEOUT_S = 5.0


def _check_reachable(uri: str) -> None:
    """An ``http(s)://`` store answers a TCP connection within :data:`CONNECT_TIMEOUT_S`, or the command stops here
    in one line instead of hanging in MLflow's retries."""
    parsed = urlsplit(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise AsdbenchError(f"the MLflow store {uri} cannot be reached: {exc.strerror or exc or 'timed out'} (is the "
                            "server running? --tracking-uri or MLFLOW_TRACKING_URI name another store)") from None


def _missing(uri: str, database: Path, create: bool) -> None:
    """A store is created only by a command that logs, in a folder that exists: a mistyped ``--tracking-uri`` is
    reported, never turned into an empty store (or a tree of folders) that then shows no runs."""
    if not create:
        raise AsdbenchError(f"no MLflow store at {database}: nothing has been logged there (check --tracking-uri or "
                            "MLFLOW_TRACKING_URI; `asdbench run` creates the store)")
    if not database.parent.is_dir():
        raise AsdbenchError(f"the MLflow store {uri} cannot be created: its folder {database.parent} does not exist")


# What a store that another process is creating at the same moment answers: a migration that process has applied
# already, or a database it holds locked; and, while its migrations run, a schema it has not finished.
CREATION_RACE = re.compile(r"already exists|database is locked", re.IGNORECASE)
UNFINISHED_SCHEMA = re.compile(r"out-of-date database schema", re.IGNORECASE)
CREATION_WAIT_S = 60.0


def _first_use(uri: str, fresh: bool) -> MlflowClient:
    """A client whose store exists and is migrated. A store that a process outside asdbench (``mlflow ui``, a
    script's ``MlflowClient``) creates at the same moment fails a migration that process has applied; SQLite rolls
    the failed one back, so it is tried again until the other process is done. An out-of-date schema is waited for
    only on a store that was ``fresh`` (absent or empty): on an old store it is the user's to upgrade."""
    deadline = time.monotonic() + CREATION_WAIT_S
    while True:
        try:
            found = MlflowClient(tracking_uri=uri)
            found.search_experiments(max_results=1)  # creates and migrates the store
            return found
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy and MLflow raise many types for a file that is no store
            message = str(exc)
            racing = CREATION_RACE.search(message) or (fresh and UNFINISHED_SCHEMA.search(message))
            if not racing or time.monotonic() > deadline:
                raise AsdbenchError(f"the MLflow store {uri} cannot be used: {store_reason(exc)}") from None
        time.sleep(0.2)


def client(tracking_uri: str | None, create: bool = True) -> MlflowClient:
    """An MLflow client of the store, which exists once this returns (``create``: made if missing, else an error).

    MLflow creates a SQLite store (its tables, by migrations) on first use; two processes doing
    that at once on a fresh file fail ("table already exists"). For SQLite stores the first use
    is therefore serialised by a lock file beside the database (and retried where a process outside
    asdbench races it: :func:`_first_use`); later uses pass it at once. Where the lock cannot be
    written (a read-only folder) an existing store is still read.
    """
    uri = resolve_tracking_uri(tracking_uri)
    database = sqlite_database(uri)
    if database is None:
        _check_reachable(uri)
        return MlflowClient(tracking_uri=uri)
    if not database.exists():
        _missing(uri, database, create)
    try:
        lock = open(database.with_name(f".{database.name}.asdbench-lock"), "a+b")
    except OSError as exc:
        if not database.exists():
            raise AsdbenchError(f"the MLflow store {uri} cannot be created: {exc.strerror} ({database.parent})") from None
        lock = None  # a read-only folder: the store exists, nothing to create, nothing to serialise
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        found = _first_use(uri, fresh=not database.exists() or database.stat().st_size == 0)
    finally:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
    return found


def experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    """The experiment's id, created if missing; a process that loses the race to create it uses the winner's."""
    found = mlflow_client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name)
    except MlflowException:
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


RESUMABLE = ("KILLED", "FAILED", "RUNNING")
PROCESS_TAGS = ("asdbench.host", "asdbench.pid")


def _process_tags() -> dict[str, str]:
    """Which process runs the run: a RUNNING run whose process is gone (SIGKILL, a lost node) may be resumed."""
    return {"asdbench.host": platform.node(), "asdbench.pid": str(os.getpid())}


def alive(tags: dict[str, str]) -> bool:
    """Whether the process that last ran a run is alive on this machine (unknown elsewhere: taken as gone)."""
    if tags.get("asdbench.host") != platform.node() or not tags.get("asdbench.pid", "").isdigit():
        return False
    pid = int(tags["asdbench.pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reopen(store: Store, run_id: str) -> None:
    """Mark an interrupted run RUNNING again, for ``--resume``; a finished or live run is refused."""
    run = store.run(run_id)
    status = run.info.status
    if status not in RESUMABLE:
        raise AsdbenchError(f"run {run_id} is {status}: only KILLED, FAILED or abandoned RUNNING runs can be resumed")
    if status == "RUNNING" and alive(run.data.tags):
        raise AsdbenchError(f"run {run_id} is still running (process {run.data.tags['asdbench.pid']} on this machine)")
    store.client.update_run(run_id, status="RUNNING")
    for key, value in _process_tags().items():
        store.client.set_tag(run_id, key, value)


@contextmanager
def tracked_run(
    store: Store, experiment: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[Tracker]:
    """Start a run in ``store`` (or reopen ``resume_run_id``); end it FINISHED on success, KILLED on Ctrl-C, FAILED on
    any error. A new run logs its environment (``environment.json``: Python, platform, every installed package)."""
    mlflow_client = store.client
    try:
        if resume_run_id:
            reopen(store, resume_run_id)
            tracker = Tracker(mlflow_client, resume_run_id)
        else:
            if parent_run_id:
                tags = {**tags, "mlflow.parentRunId": parent_run_id}
            run = mlflow_client.create_run(experiment_id(mlflow_client, experiment), run_name=run_name,
                                           tags={**tags, **_process_tags()})
            tracker = Tracker(mlflow_client, run.info.run_id)
    except MlflowException as exc:  # a read-only store or folder, a server refusing writes: before any work
        raise AsdbenchError(f"the MLflow store {store.uri} cannot be written: {store_reason(exc)}") from None
    try:
        with signals_as_interrupt():
            if not resume_run_id:  # every installed package's version, beside the tags' numeric ones
                tracker.log_text(json.dumps(environment.describe(), indent=2) + "\n", "environment.json")
            yield tracker
    except KeyboardInterrupt:
        mlflow_client.set_terminated(tracker.run_id, status="KILLED")
        raise
    except BaseException:
        mlflow_client.set_terminated(tracker.run_id, status="FAILED")
        raise
    mlflow_client.set_terminated(tracker.run_id, status="FINISHED")


class Store:
    """One MLflow store, opened once and handed to whatever reads or writes it: the asdbench runs in it (the
    role filter and the experiment listing live here, not in each caller) and the runs it opens.

    Built where a command starts (``Store(tracking_uri)``); the store is opened on first use, not here, and created
    then only with ``create`` (commands that log): a command that reads reports a missing store."""

    def __init__(self, tracking_uri: str | None = None, create: bool = True) -> None:
        self.uri = resolve_tracking_uri(tracking_uri)
        self.create = create
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = client(self.uri, self.create)
        return self._client

    def experiment_ids(self, prefix: str = "") -> list[str]:
        """The experiments whose names start with ``prefix`` (``""``: every one, ``--experiment NAME``'s too)."""
        return [e.experiment_id for e in self.client.search_experiments() if e.name.startswith(prefix)]

    def runs(self, query: str = "", roles: tuple[str, ...] | None = ("run",), prefix: str = "",
             order_by: list[str] | None = None, max_results: int = 50_000) -> list[Run]:
        """Runs matching the MLflow ``query`` in the experiments whose names start with ``prefix`` (every experiment:
        a run logged with ``--experiment NAME`` is an asdbench run too); asdbench's runs of ``roles`` only (``asdbench
        run``'s own: ``run``; a ``--seeds`` parent is ``seeds``, ``asdbench eval``'s ``eval``), unless ``roles`` is
        None: then every run."""
        experiments = self.experiment_ids(prefix)
        found = self.client.search_runs(experiments, query, max_results=max_results, order_by=order_by) \
            if experiments else []
        if roles is None:
            return list(found)
        return [r for r in found if "asdbench.system" in r.data.tags and r.data.tags.get("asdbench.role", "run") in roles]

    def run(self, run_id: str) -> Run:
        client = self.client  # a store that cannot be opened is its own error, not an unknown run
        try:
            return client.get_run(run_id)
        except Exception:  # noqa: BLE001 - MLflow raises several types for an unknown id
            raise AsdbenchError(f"no MLflow run {run_id} in {self.uri} (see `asdbench runs`)") from None

    def download(self, run_id: str, path: str, folder: Path | str, missing: str) -> Path:
        """An artifact of a run, downloaded into ``folder``; ``missing`` is the error when the run has none."""
        client = self.client
        try:
            return Path(client.download_artifacts(run_id, path, str(folder)))
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing run or artifact
            raise AsdbenchError(missing) from None

    def open_run(self, dataset: str, experiment: str | None, run_name: str, tags: dict[str, str],
                 parent_run_id: str | None = None, resume_run_id: str | None = None):
        """:func:`tracked_run` in this store, in ``experiment`` (default: ``asdbench/<dataset>``)."""
        return tracked_run(self, experiment or experiment_name(dataset), run_name, tags, parent_run_id, resume_run_id)

    def resume_source(self, run_id: str, folder: Path) -> tuple[str, Path]:
        """The system of an asdbench run and its logged ``config.resolved.toml`` (downloaded into ``folder``): what
        ``--resume`` rebuilds the run's config from."""
        tags = self.run(run_id).data.tags
        if not tags.get("asdbench.system") or tags.get("asdbench.role", "run") != "run":
            raise AsdbenchError(f"run {run_id} is not a run of `asdbench run` (a --seeds parent is resumed seed by seed)")
        path = self.download(run_id, "config.resolved.toml", folder,
                             f"run {run_id} has no config.resolved.toml artifact to resume from")
        return tags["asdbench.system"], path
