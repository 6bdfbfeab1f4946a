"""Suite files: a grid of runs (systems x seeds x settings) for ``asdbench sweep``, read from TOML.

    name = "paper-table4"           # tags every run (tag asdbench.sweep), so `compare --tag` finds the sweep
    systems = ["stgram-mfn", "dcase-ae"]
    seeds = [0, 1, 2, 3, 4]

    [set]                           # config keys of every run, as --set
    dataset = "dcase2020t2"
    "dataset.root" = "/data/dcase2020"

    [grid]                          # each key's values multiply the runs
    lr = [1e-4, 3e-4]

    [system.dcase-ae]               # keys for one system only
    epochs = 100

    [resources]                     # per run, for Ray's scheduler
    num_cpus = 4
    num_gpus = 1

Every run's config is resolved when the suite is read, so a misspelt key or system fails before
anything starts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asdbench.config import flatten, load_toml_table, resolve
from asdbench.errors import AsdbenchError
from asdbench.plugins import Plugins
from asdbench.registry import normalize

TOP_KEYS = {"name", "systems", "seeds", "set", "grid", "system", "resources"}


@dataclass(frozen=True)
class RunSpec:
    """One run of a suite: a system, a seed and its ``--set`` values."""

    system: str
    seed: int
    values: dict[str, Any]

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.values.items()) if k != "seed")
        return f"{self.system} seed {self.seed}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class Suite:
    name: str
    runs: tuple[RunSpec, ...]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    grid_keys: tuple[str, ...] = field(default_factory=tuple)


def _list(table: dict, key: str, where: Path) -> list:
    value = table.get(key)
    if not isinstance(value, list) or not value:
        raise AsdbenchError(f"{where}: '{key}' must be a non-empty list")
    return value


def _table(table: dict, key: str, where: Path) -> dict:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise AsdbenchError(f"{where}: '{key}' must be a table ([{key}]), not {type(value).__name__} {value!r}")
    return value


def _resource(resources: dict, key: str, default: float, where: Path) -> float:
    value = resources.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        raise AsdbenchError(f"{where}: resources.{key} must be a number of at least 0, not {value!r}")
    return float(value)


# A sweep's name is a tag value that MLflow queries quote: letters, digits and _ - . : and spaces only.
SWEEP_NAME = re.compile(r"^[\w.\-: ]+$")


def read_suite(path: Path, plugins: Plugins) -> Suite:
    """The runs of a suite file, each config resolved (an error names the file and the bad key or system)."""
    table = load_toml_table(path)
    unknown = sorted(set(table) - TOP_KEYS)
    if unknown:
        raise AsdbenchError(f"{path}: unknown entries {', '.join(unknown)} (a suite has {', '.join(sorted(TOP_KEYS))})")
    systems = [normalize(str(s)) for s in _list(table, "systems", path)]
    seeds = table.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise AsdbenchError(f"{path}: 'seeds' must be a non-empty list of integers")
    name = table.get("name", path.stem)
    if not isinstance(name, str) or not SWEEP_NAME.match(name):
        raise AsdbenchError(f"{path}: name {name!r} may hold letters, digits, _ - . : and spaces only (it tags every "
                            "run of the sweep and is searched for)")
    common = flatten(_table(table, "set", path))
    grid = {k: v if isinstance(v, list) else [v] for k, v in _table(table, "grid", path).items()}
    systems_table = _table(table, "system", path)
    for key, value in systems_table.items():
        if not isinstance(value, dict):
            raise AsdbenchError(f"{path}: [system.{key}] must be a table of keys, not {value!r}")
    per_system = {normalize(k): flatten(v) for k, v in systems_table.items()}
    stray = sorted(set(per_system) - set(systems))
    if stray:
        raise AsdbenchError(f"{path}: [system.{stray[0]}] names a system the suite does not run")
    runs = []
    for system in systems:
        for combo in itertools.product(*grid.values()):
            values = {**common, **dict(zip(grid, combo)), **per_system.get(system, {})}
            for seed in seeds:
                spec = RunSpec(system, seed, {**values, "seed": seed})
                try:
                    resolve(plugins, system, set_values=spec.values)
                except AsdbenchError as exc:
                    raise AsdbenchError(f"{path}: run {spec.label}: {exc}") from None
                runs.append(spec)
    resources = _table(table, "resources", path)
    return Suite(name, tuple(runs), _resource(resources, "num_cpus", 1, path), _resource(resources, "num_gpus", 0, path),
                 tuple(grid))
