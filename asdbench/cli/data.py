"""``asdbench data``: generate the synthetic data set where the user asks."""

from __future__ import annotations

from pathlib import Path

import click

from asdbench.cli.output import console, err_console
from asdbench.progress import RichReporter


@click.group("data")
def data_group() -> None:
    """Data sets: generate the synthetic one."""


@data_group.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write (new or empty).")
@click.option("--size", default="small", show_default=True, type=click.Choice(["tiny", "small", "full"]))
@click.option("--seed", default=2020, show_default=True, help="Generator seed: the same seed writes the same files.")
def synth_command(out: Path, size: str, seed: int) -> None:
    """Write the synthetic machine-sound data set in the DCASE 2020 Task 2 layout."""
    from asdbench_plugins.datasets.synthetic import generate

    with RichReporter(err_console).task(f"Generating {size}", 0) as step:
        generate(out, size, seed, progress=lambda done, total: step.advance(status=f"{done}/{total}"))
    console.print(f"Wrote the synthetic '{size}' set to {out}; use it with "
                  f"`asdbench run SYSTEM --dataset synthetic --set dataset.root={out} --set dataset.size={size}`")
