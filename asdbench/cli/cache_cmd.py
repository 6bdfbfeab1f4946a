"""``asdbench cache``: what the on-disk cache holds, and clearing what can be made again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
from rich.table import Table

from asdbench.cache import cache_dir
from asdbench.cli.output import console, err_console
from asdbench.data.array_cache import dataset_of

# Folders of the cache: what each holds, and whether clearing it loses anything that cannot be made again.
PARTS = {
    "waves": "decoded WAVs (int16 memory maps), one entry per clip list and clip length",
    "features": "features of frontends without weights (float32 memory maps)",
    "synthetic": "generated synthetic data sets",
    "runs": "per-epoch checkpoints of tracked runs (resume or inspect an interrupted run)",
}



def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _entries(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else 0


@click.group("cache")
def cache_group() -> None:
    """The cache under $ASDBENCH_CACHE (default ~/.cache/asdbench): sizes, and clearing."""


@cache_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
def info_command(as_json: bool) -> None:
    """Entries and disk use of each part of the cache."""
    root = cache_dir()
    parts = {part: {"entries": _entries(root / part), "bytes": _size(root / part), "holds": holds}
             for part, holds in PARTS.items()}
    total = sum(p["bytes"] for p in parts.values())
    datasets = _by_dataset(root)
    if as_json:
        click.echo(json.dumps({"root": str(root), "parts": parts, "total_bytes": total, "datasets": datasets},
                              indent=2))
        return
    table = Table(title=f"asdbench cache at {root}")
    for col in ("part", "entries", "size", "holds"):
        table.add_column(col, justify="right" if col in ("entries", "size") else "left")
    for part, p in parts.items():
        table.add_row(part, str(p["entries"]), f"{p['bytes'] / 2**20:,.1f} MB", p["holds"])
    table.add_row("all", "", f"{total / 2**20:,.1f} MB", "", style="bold")
    console.print(table)
    if datasets:
        per = Table(title="decoded waves and features by data set (a run says what it will add before it reads)")
        for col in ("data set", "waves", "features"):
            per.add_column(col, justify="left" if col == "data set" else "right")
        for name, sizes in datasets.items():
            per.add_row(name, f"{sizes['waves'] / 2**20:,.1f} MB", f"{sizes['features'] / 2**20:,.1f} MB")
        console.print(per)


def _by_dataset(root: Path) -> dict[str, dict[str, int]]:
    """Bytes of the wave and feature entries of each data set, from the label each entry carries."""
    out: dict[str, dict[str, int]] = {}
    for part in ("waves", "features"):
        folder = root / part
        for entry in (folder.iterdir() if folder.exists() else ()):
            if entry.is_dir() and not entry.name.startswith("."):
                sizes = out.setdefault(dataset_of(entry), {"waves": 0, "features": 0})
                sizes[part] += _size(entry)
    return dict(sorted(out.items()))


@cache_group.command("clear")
@click.argument("parts", nargs=-1, type=click.Choice([*PARTS, "all"]))
@click.option("--yes", "-y", is_flag=True, help="Delete checkpoints of unfinished runs without asking.")
def clear_command(parts: tuple[str, ...], yes: bool) -> None:
    """Delete PARTS of the cache (default: waves and features, which any run makes again).

    The part 'runs' holds the checkpoints of unfinished runs, which nothing makes again (they are what
    'run --resume' continues from): name it (or 'all') to delete it, after a confirmation.
    """
    chosen = list(PARTS) if "all" in parts else list(parts or ("waves", "features"))
    root = cache_dir()
    unfinished = _entries(root / "runs")
    if "runs" in chosen and unfinished and not yes:
        click.confirm(f"Delete the checkpoints of {unfinished} unfinished runs (they cannot be resumed afterwards)?",
                      abort=True, err=True)
    for part in chosen:
        folder = root / part
        size = _size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        err_console.print(f"Cleared {part}: {size / 2**20:,.1f} MB ({folder})", highlight=False)
