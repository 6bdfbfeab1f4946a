"""``asdbench sweep``: the runs of a suite as Ray tasks, every one logged to one MLflow store, resumable.

Ray schedules; asdbench only says what a run is. Each task resolves its run's config and data
(:func:`run_spec`) on the machine that executes it, so the comparability key is the one that run
would log: a FINISHED run of the same system, seed and key is not run again; a FAILED, KILLED or
abandoned one is resumed from its checkpoints (``asdbench run --resume``), and Ray retries a task
that fails (``max_retries``), which resumes it again. Ctrl-C cancels the remaining tasks; a running
task is interrupted as Ctrl-C interrupts ``asdbench run`` (its MLflow run ends KILLED), and a run left
RUNNING by a worker that died is marked KILLED before the sweep exits. :func:`run_serially` runs the
same :func:`run_spec` one run after another in this process, for a machine without Ray.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError, reason
from asdbench.plugins import get_plugins
from asdbench.progress import Reporter
from asdbench.scale import orphans
from asdbench.scale.suite import RunSpec, Suite
from asdbench.tracking.comparability import TAG, comparability_key
from asdbench.tracking.store import Store, alive

SWEEP_TAG = "asdbench.sweep"
PASSED_ENV = ("ASDBENCH_CACHE", "ASDBENCH_LOAD_PLUGINS", "MLFLOW_TRACKING_URI")  # what workers must see as the driver


@dataclass(frozen=True)
class Outcome:
    spec: RunSpec
    status: str  # finished, resumed, skipped, failed
    run_id: str
    seconds: float
    message: str = ""


def absolute_uri(uri: str) -> str:
    """A SQLite store's path made absolute: Ray workers need not share the driver's working directory."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def previous_run(store: Store, system: str, seed: int, key: str):
    """The latest run of ``system`` with this seed and comparability key in any experiment, if any (an MLflow Run)."""
    runs = store.runs(f"tags.\"asdbench.system\" = '{system}' and params.seed = '{seed}'",
                      order_by=["attributes.start_time DESC"])
    return next((r for r in runs if r.data.tags.get(TAG) == key), None)


def run_spec(spec: RunSpec, sweep: str, tracking_uri: str, experiment: str | None = None) -> Outcome:
    """Run one run of a suite here, unless the store holds it FINISHED; resume it if it holds it interrupted."""
    from asdbench.training.tracked_run import tracked_execute  # the worker's imports, not the driver's

    started = time.perf_counter()
    plugins = get_plugins()
    plan = make_plan(plugins, resolve(plugins, spec.system, set_values=spec.values))
    key = json.dumps(comparability_key(plan.config, plan.data), separators=(",", ":"))
    store = Store(tracking_uri)
    found = previous_run(store, spec.system, spec.seed, key)
    status = found.info.status if found is not None else None
    if status == "FINISHED":
        return Outcome(spec, "skipped", found.info.run_id, time.perf_counter() - started, "FINISHED before")
    if status == "RUNNING" and alive(found.data.tags):
        return Outcome(spec, "skipped", found.info.run_id, time.perf_counter() - started, "running in another process")
    resume = found.info.run_id if found is not None else None
    run = tracked_execute(plugins, plan, Reporter(), store, experiment, resume_run_id=resume, tags={SWEEP_TAG: sweep})
    return Outcome(spec, "resumed" if resume else "finished", run.run_id, time.perf_counter() - started)


def close_abandoned(tracking_uri: str, sweep: str, wait_s: float = 0.0) -> list[str]:
    """Mark KILLED the sweep's runs left RUNNING by a process that is gone, waiting up to ``wait_s`` for processes
    that are still ending (a worker Ray is shutting down, interrupted while it closed its run); their IDs."""
    store = Store(tracking_uri)
    query = f"tags.\"{SWEEP_TAG}\" = '{sweep}' and attributes.status = 'RUNNING'"
    deadline = time.monotonic() + wait_s
    runs = store.runs(query, roles=None)
    while any(alive(r.data.tags) for r in runs) and time.monotonic() < deadline:
        time.sleep(0.5)
        runs = store.runs(query, roles=None)
    closed = []
    for run in runs:
        if not alive(run.data.tags):
            store.client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
    return closed


def _failure(exc: BaseException) -> str:
    """The run's own error inside Ray's wrapping (``cause``), its last line: Ray's text ends in the error."""
    return reason(getattr(exc, "cause", None) or exc, last=True, limit=300)


def require_ray():
    """Ray, which only sweeps need: an install without the ``sweep`` extra gets a one-line error saying how to add it."""
    try:
        import ray
    except ImportError:
        raise AsdbenchError("asdbench sweep runs its runs on Ray, which is not installed: pip install 'asdbench[sweep]' "
                            "(in a clone: .venv/bin/pip install -c requirements-lock.txt -e '.[sweep]'), or run them one "
                            "after another without Ray: --serial") from None
    return ray


def run_serially(suite: Suite, tracking_uri: str, on_outcome: Callable[[Outcome], None], retries: int = 1,
                 experiment: str | None = None) -> list[Outcome]:
    """Every run of ``suite`` in this process, one after another, without Ray: the same skip, resume and retry
    rules as the Ray runner (a failed run is run again, which resumes it, up to ``retries`` times). Ctrl-C ends
    the running run KILLED, as in ``asdbench run``, and the sweep with it."""
    Store(tracking_uri).client  # the store exists before the first run
    outcomes: list[Outcome] = []
    try:
        for spec in suite.runs:
            for _attempt in range(retries + 1):
                try:
                    outcome = run_spec(spec, suite.name, tracking_uri, experiment)
                    break
                except Exception as exc:  # noqa: BLE001 - a run's failure is reported, the sweep goes on
                    outcome = Outcome(spec, "failed", "", 0.0, _failure(exc))
            outcomes.append(outcome)
            on_outcome(outcome)
    finally:
        close_abandoned(tracking_uri, suite.name)
    return outcomes


def run_sweep(suite: Suite, tracking_uri: str, on_outcome: Callable[[Outcome], None], address: str | None = None,
              workers: int | None = None, retries: int = 1, experiment: str | None = None) -> list[Outcome]:
    """Every run of ``suite`` as a Ray task: on a local Ray instance of ``workers`` concurrent runs (default: as
    many as the CPUs hold), or on the cluster at ``address`` (``auto``, ``ray://host:10001``)."""
    ray = require_ray()

    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    Store(tracking_uri).client  # the store exists before workers race to create it
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "runtime_env": {"env_vars": env}}
    watcher = None
    if address:
        ray.init(address=address, **quiet)
    else:
        watcher = orphans.watch()  # a local instance's agents outlived a driver killed outright
        slots = workers or max(1, int((os.cpu_count() or 1) // max(suite.num_cpus, 1)))
        ray.init(num_cpus=int(slots * suite.num_cpus) or 1, num_gpus=None if suite.num_gpus else 0,
                 include_dashboard=False, **quiet)
    task = ray.remote(num_cpus=suite.num_cpus, num_gpus=suite.num_gpus, max_retries=retries,
                      retry_exceptions=True)(run_spec)
    pending = {task.remote(spec, suite.name, tracking_uri, experiment): spec for spec in suite.runs}
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a run's failure is reported, the sweep goes on
                    outcome = Outcome(spec, "failed", "", 0.0, _failure(exc))
                outcomes.append(outcome)
                on_outcome(outcome)
    except KeyboardInterrupt:
        interrupted = True
        for ref in pending:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: its MLflow run ends KILLED
        _, stuck = ray.wait(list(pending), num_returns=len(pending), timeout=30)
        for ref in stuck:
            ray.cancel(ref, force=True)  # its worker is killed; its run is closed below
        raise
    finally:
        ray.shutdown()  # stops a local instance's workers
        if watcher is not None:
            watcher.terminate()
            watcher.wait()
        close_abandoned(tracking_uri, suite.name, wait_s=30 if interrupted else 0)
    return outcomes


def check_address(address: str | None) -> None:
    if address and not (address == "auto" or address.startswith(("ray://", "localhost:")) or ":" in address):
        raise AsdbenchError(f"--address {address}: give auto, ray://HOST:10001 or HOST:PORT of a Ray cluster")
