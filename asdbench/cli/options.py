"""Options shared by every command that resolves a config, so ``run`` and ``config show`` agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from asdbench.config import RunConfig, load_toml, parse_assignments, resolve, resolve_dataset
from asdbench.plugins import get_plugins


def several(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """The one convention for options that take several values: repeat the option, or give a comma list, or both
    (``--seeds 0,1 --seeds 2``). Use with ``multiple=True``."""
    return [item.strip() for value in values for item in str(value).split(",") if item.strip()]


def config_options(fn: Callable) -> Callable:
    options = [
        click.option("--dataset", "-d", default=None, help="Dataset plugin (default: synthetic)."),
        click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset folder (sets dataset.root)."),
        click.option("--eval-labels", type=click.Path(path_type=Path), default=None,
                     help="Evaluation-set ground truth, eval_data_list.csv or its folder (sets dataset.eval_labels)."),
        click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="TOML file of config keys."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key, e.g. --set epochs=3 (repeatable)."),
        click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:N."),
        click.option("--skip-bad-files", is_flag=True, default=None,
                     help="Leave out unreadable WAV files (counted, listed in bad_files.csv) instead of stopping."),
        click.option("--seed", type=int, default=None,
                     help="Seed of every random draw of training: weights of every component, batch order (sets the "
                     "seed key). The synthetic data set's generator has its own, dataset.seed."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resolve_from_options(
    system: str | None, dataset: str | None, root: Path | None, eval_labels: Path | None, config_file: Path | None,
    assignments: tuple[str, ...], device: str | None, seed: int | None, skip_bad_files: bool | None = None,
) -> RunConfig:
    file_values = load_toml(config_file) if config_file else {}
    set_values = parse_assignments(assignments)
    for key, value in (
        ("dataset", dataset),
        ("dataset.root", str(root) if root else None),
        ("dataset.eval_labels", str(eval_labels) if eval_labels else None),
        ("device", device),
        ("seed", seed),
        ("skip_bad_files", (skip_bad_files or None) if system is not None else None),  # run keys, not data's
    ):
        if value is not None:
            set_values[key] = value
    if system is None:
        return resolve_dataset(get_plugins(), {**file_values, **set_values})
    return resolve(get_plugins(), system, file_values, set_values)
