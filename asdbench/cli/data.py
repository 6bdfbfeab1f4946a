"""``asdbench data``: generate the synthetic data set where the user asks."""

from __future__ import annotations

from pathlib import Path

import click

from asdbench.cli.options import data_options, resolve_from_options
from asdbench.cli.output import console, err_console, summary_table
from asdbench.errors import AsdbenchError
from asdbench.plugins import get_plugins
from asdbench.progress import RichReporter


@click.group("data")
def data_group() -> None:
    """Data sets: check what a dataset finds, generate the synthetic one."""


@data_group.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write (new or empty).")
@click.option("--size", default="small", show_default=True, type=click.Choice(["tiny", "small", "full"]),
              help="tiny: 2 machine types, 1 s clips; small: 4 (2021+: 3) types, 2 s; full (2020 layout only): 10 s.")
@click.option("--seed", default=2020, show_default=True, help="Generator seed: the same seed writes the same files.")
@click.option("--layout", default="dcase2020t2", show_default=True,
              type=click.Choice(["dcase2020t2", "dcase2021t2", "dcase2022t2", "dcase2023t2", "dcase2024t2", "dcase2025t2",
                                 "dcase2026t2"]),
              help="Which release's layout to write: file names, folders, sections, domains, ground-truth list.")
def synth_command(out: Path, size: str, seed: int, layout: str) -> None:
    """Write synthetic machine sounds in the layout of a DCASE Task 2 release (default: 2020's)."""
    from asdbench_plugins.datasets.synthetic import generate

    if layout != "dcase2020t2":
        from asdbench_plugins.datasets.synthetic_sections import generate_layout

        with RichReporter(err_console).task(f"Generating {layout} {size}", 0) as step:
            generate_layout(out, layout, size, seed, progress=lambda done, total: step.advance(status=f"{done}/{total}"))
        console.print(f"Wrote a synthetic '{size}' tree in the {layout} layout to {out}; use it with "
                      f"`asdbench run SYSTEM --dataset {layout} --root {out}` (development protocol), or add "
                      f"`--set dataset.protocol=eval --eval-labels {out}` for the evaluation set", highlight=False)
        return
    with RichReporter(err_console).task(f"Generating {size}", 0) as step:
        generate(out, size, seed, progress=lambda done, total: step.advance(status=f"{done}/{total}"))
    console.print(f"Wrote the synthetic '{size}' set to {out}; use it with "
                  f"`asdbench run SYSTEM --dataset synthetic --root {out} --set dataset.size={size}"
                  f" --set dataset.seed={seed}`", highlight=False)


@data_group.command("check")
@data_options
def check_command(**options) -> None:
    """Print what a dataset finds, per machine type and ID, and the files that do not fit its layout."""
    from asdbench.data.plan import load_dataset  # torch loads here: `data check --help` does not wait for it

    plugins = get_plugins()
    config = resolve_from_options(None, **options)
    if "dataset.strict" in config.values:
        config = resolve_from_options(None, **{**options, "assignments": (*options["assignments"], "dataset.strict=false")})
    dataset = load_dataset(plugins, config)
    console.print(summary_table(dataset))
    for part in getattr(dataset, "parts", ()):
        console.print(f"  {part.summary()}", highlight=False)
    misfits = [str(p) for p in getattr(dataset, "misfits", [])]
    _list(f"{len(misfits)} files do not fit the layout:", misfits)
    bad = _unreadable(dataset)
    _list(f"{len(bad)} files cannot be read (a run stops on them, or skips them with --skip-bad-files):", bad)
    if misfits or bad:
        raise SystemExit(1)
    console.print("[green]All files fit the layout and can be read.[/green]")


def _unreadable(dataset) -> list[str]:
    """The reason each clip's header check fails, for datasets with a ``check`` method."""
    check = getattr(dataset, "check", None)
    found = []
    for clip in [*dataset.clips("train"), *dataset.clips("test")] if check else []:
        try:
            check(clip)
        except AsdbenchError as exc:
            found.append(str(exc))
    return found


def _list(title: str, lines: list[str]) -> None:
    if not lines:
        return
    console.print(f"[red]{title}[/red]")
    for line in lines[:50]:
        console.print(f"  {line}", highlight=False)
    if len(lines) > 50:
        console.print(f"  ... and {len(lines) - 50} more")
