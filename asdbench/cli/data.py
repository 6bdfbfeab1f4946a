"""``asdbench data``: generate the synthetic data set where the user asks."""

from __future__ import annotations

from pathlib import Path

import click

from asdbench.cli.options import data_options, resolve_from_options, several
from asdbench.cli.output import console, err_console, summary_table
from asdbench.errors import AsdbenchError
from asdbench.plugins import get_plugins
from asdbench.progress import RichReporter


@click.group("data")
def data_group() -> None:
    """Data sets: download the official ones, check what a dataset finds, generate the synthetic one."""


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


@data_group.command("download")
@click.argument("dataset")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The data set's folder: what --root then names.")
@click.option("--part", "parts", multiple=True, default=("dev",), show_default=True, callback=several,
              help="dev, additional (training data of the evaluation machines), eval (their test clips), labels "
              "(the evaluation ground truth, where a record holds it); a comma list or repeated.")
@click.option("--types", "types", multiple=True, callback=several, help="Only these machine types (comma list or repeated).")
@click.option("--raw", is_flag=True, help="Unpack into dev_data/raw/ and eval_data/raw/, as the 2023-2026 baselines do.")
@click.option("--keep-zips", is_flag=True, help="Keep the downloaded zips (in DIR/.downloads) after unpacking.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Further attempts per file after a failed transfer (continued where it stopped) or a wrong checksum.")
def download_command(dataset: str, out: Path, parts: list[str], types: list[str], raw: bool,
                     keep_zips: bool, retries: int) -> None:
    """Download a DCASE data set from its Zenodo records, check each file's MD5, unpack it into the layout the
    data set reads; a second call fetches only what is missing."""
    from asdbench.data.download import PARTS, place, record_files, wanted

    chosen = parts
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise AsdbenchError(f"--part {unknown[0]}: one of {', '.join(PARTS)}")
    registry = get_plugins().registry("dataset")
    records = getattr(registry.get(dataset).factory, "zenodo", None) if dataset in registry else None
    if not records:
        downloadable = sorted(e.name for e in registry if getattr(e.factory, "zenodo", None))
        raise AsdbenchError(f"{dataset} names no records to download; data sets that do: {', '.join(downloadable)}")
    missing = [p for p in chosen if p not in records]
    if missing:
        raise AsdbenchError(f"{dataset} has no '{missing[0]}' part; it has {', '.join(records)}")
    out.mkdir(parents=True, exist_ok=True)
    done_lines = []
    for part in chosen:
        with err_console.status(f"Reading Zenodo record {records[part]} ({dataset} {part})..."):
            files = wanted(record_files(records[part]), types)
        if not files:
            raise AsdbenchError(f"record {records[part]} holds no file of the types {', '.join(types)}")
        for file in files:
            with _byte_progress(file.name, file.size) as on_bytes:
                done_lines.append(place(file, out, part, raw, keep_zips, on_bytes, retries))
            err_console.print(done_lines[-1], highlight=False)
    console.print(f"{dataset} ({', '.join(chosen)}) is in {out}: `asdbench run SYSTEM --dataset {dataset} --root {out}`",
                  highlight=False)


def _byte_progress(name: str, size: int):
    """A transfer's progress bar on a terminal (bytes, speed, time left); nothing in a log (the line per file is)."""
    from contextlib import contextmanager

    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    @contextmanager
    def bar():
        if not err_console.is_terminal:
            yield lambda n: None
            return
        with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task(name, total=size)
            yield lambda n: progress.advance(task, n)

    return bar()
