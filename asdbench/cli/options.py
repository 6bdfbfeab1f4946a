"""Options shared by every command that resolves a config, so ``run`` and ``config show`` agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asdbench.config import RunConfig, comma_list, load_toml, parse_assignments, resolve, resolve_dataset
from asdbench.plugins import Plugins, get_plugins

if TYPE_CHECKING:
    from asdbench.catalog import Catalog


def several(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """The one convention for options that take several values: repeat the option, or give a comma list, or both
    (``--seeds 0,1 --seeds 2``). Use with ``multiple=True``."""
    return [item for value in values for item in comma_list(str(value))]


def complete(kind: str) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Shell completion of a plugin name of ``kind`` (``asdbench run <TAB>``), read from the plugin catalog so a tab
    press does not wait for torch; enable with ``eval "$(_ASDBENCH_COMPLETE=bash_source asdbench)"``."""
    def names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from asdbench.catalog import plugin_catalog

        return [e.name for e in plugin_catalog().registry(kind) if e.name.startswith(incomplete.lower())]

    return names


DATA_OPTIONS = [
    click.option("--dataset", "-d", default=None, shell_complete=complete("dataset"),
                 help="Dataset plugin (default: synthetic; with --root alone, the DCASE layout found there)."),
    click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset folder (sets dataset.root)."),
    click.option("--eval-labels", type=click.Path(path_type=Path), default=None,
                 help="Evaluation-set ground truth, eval_data_list.csv or its folder (sets dataset.eval_labels)."),
    click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="TOML file of config keys."),
    click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                 help="Override a config key, e.g. --set epochs=3 (repeatable)."),
]

RUN_OPTIONS = [
    click.option("--types", multiple=True, callback=several, metavar="T1,T2,...",
                 help="Only these machine types (repeatable, or comma-separated; sets the types key)."),
    click.option("--ids", multiple=True, callback=several, metavar="ID1,ID2,...",
                 help="Only these machine IDs, or sections from DCASE 2021 on: '00' or 'id_00' (sets the ids key)."),
    click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:N."),
    click.option("--skip-bad-files", is_flag=True, default=None,
                 help="Leave out unreadable WAV files (counted, listed in bad_files.csv) instead of stopping."),
    click.option("--seed", type=int, default=None,
                 help="Seed of every random draw of training: weights of every component, batch order (sets the "
                 "seed key). Each model draws from a stream of its own, from this seed and its name: a --types fan "
                 "run trains fan as the full run does. The synthetic data set's generator has its own, dataset.seed."),
]


def _apply(options: list[Callable], fn: Callable) -> Callable:
    for option in reversed(options):
        fn = option(fn)
    return fn


def data_options(fn: Callable) -> Callable:
    """The options that choose and read a data set: what ``data check`` takes."""
    return _apply(DATA_OPTIONS, fn)


def config_options(fn: Callable) -> Callable:
    """The data options and those of a run: what ``run`` and ``config show`` take."""
    return _apply([*DATA_OPTIONS, *RUN_OPTIONS], fn)


def resolve_from_options(
    system: str | None, dataset: str | None, root: Path | None, eval_labels: Path | None, config_file: Path | None,
    assignments: tuple[str, ...], device: str | None = None, seed: int | None = None,
    skip_bad_files: bool | None = None, types: list[str] | None = None, ids: list[str] | None = None,
    plugins: Plugins | Catalog | None = None,
) -> RunConfig:
    """The config the options describe, resolved against ``plugins`` (default: the loaded plugins)."""
    file_values = load_toml(config_file) if config_file else {}
    set_values = parse_assignments(assignments)
    plugins = plugins or get_plugins()
    if root and dataset is None and "dataset" not in {**file_values, **set_values}:
        dataset = _recognised(system, root, plugins)
    for key, value in (
        ("dataset", dataset),
        ("dataset.root", str(root) if root else None),
        ("dataset.eval_labels", str(eval_labels) if eval_labels else None),
        ("device", device),
        ("seed", seed),
        ("skip_bad_files", skip_bad_files or None),
        ("types", types or None),
        ("ids", ids or None),
    ):
        if value is not None:
            set_values[key] = value
    def resolved() -> RunConfig:
        if system is None:
            return resolve_dataset(plugins, {**file_values, **set_values})
        return resolve(plugins, system, file_values, set_values)

    config = resolved()
    stated = _stated_by_folder(config, root, {**file_values, **set_values})
    if stated:
        set_values.update(stated)
        config = resolved()
    return config


def _stated_by_folder(config: RunConfig, root: Path | None, given: dict) -> dict:
    """Dataset parameters the ``--root`` folder states itself (a generated tree's size and seed, from its manifest:
    a dataset factory's optional ``stated_by(root)``), for those the user did not set: the run reads the folder as
    it is and logs what it read."""
    if root is None:
        return {}
    factory = get_plugins().registry("dataset").get(config.component("dataset")).factory
    stated_by = getattr(factory, "stated_by", None)
    if not callable(stated_by):
        return {}
    return {f"dataset.{k}": v for k, v in stated_by(root).items() if f"dataset.{k}" not in given}


def _recognised(system: str | None, root: Path, plugins: Plugins | Catalog) -> str | None:
    """The data set ``--root`` alone stands for: the plugin that recognises the folder, unless the system's recipe
    names its own data set."""
    if system is not None and "dataset" in plugins.registry("system").get(system).factory.defaults:
        return None
    from asdbench.data.recognise import dataset_for

    return dataset_for(get_plugins(), root)  # the factories themselves tell their layouts apart
