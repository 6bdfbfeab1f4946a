"""``asdbench bench``: throughput of systems end to end, against the model-only bound and the plain step."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from asdbench.cli.options import complete, several
from asdbench.cli.output import err_console, wide_console
from asdbench.config import parse_assignments
from asdbench.scale.bench_spec import VARIANTS, BenchSpec

COLUMNS = (
    ("system", "system", "{}"),
    ("variant", "variant", "{}"),
    ("precision", "precision", "{}"),
    ("memory", "memory_format", "{}"),
    ("batch", "batch_size", "{}"),
    ("frontend clips/s", "frontend_clips_per_s", "{:,.1f}"),
    ("train clips/s", "train_clips_per_s", "{:,.1f}"),
    ("bound clips/s", "bound_train_clips_per_s", "{:,.1f}"),
    ("e2e/bound", "e2e_over_bound", "{:.2f}"),
    ("x plain", "train_speedup_vs_plain", "{:.2f}"),
    ("infer clips/s", "infer_clips_per_s", "{:,.1f}"),
    ("read s (cold/warm)", None, ""),
    ("peak MB", "peak_memory_mb", "{:,.0f}"),
    ("paper protocol h", "paper_protocol_hours", "{:,.1f}"),
)


def _cells(row: dict) -> list[str]:
    cells = []
    for _, key, fmt in COLUMNS:
        if key is None:
            warm = "-" if row["read_warm_s"] is None else f"{row['read_warm_s']:.2f}"
            cells.append(f"{row['read_s']:.2f} / {warm}")
        else:
            cells.append("-" if row.get(key) is None else fmt.format(row[key]))
    if row["variant"] == "compiled" and not row["compiled"]:
        cells[1] += " (eager: compile failed)"
    return cells


@click.command("bench")
@click.option("--systems", multiple=True, default=["stgram-mfn", "dcase-ae"], show_default=True, callback=several,
              shell_complete=complete("system"),
              help="Systems (repeatable, or comma-separated).")
@click.option("--variants", multiple=True, default=list(VARIANTS), show_default=True, callback=several,
              help="plain (fp32, NCHW, eager, no caches), eager (the system's settings, not compiled), compiled (the same compiled: what compile=auto picks for long runs).")
@click.option("--clips", default=BenchSpec.clips, show_default=True, help="Generated training clips.")
@click.option("--seconds", default=BenchSpec.seconds, show_default=True, help="Clip length.")
@click.option("--batch-size", type=int, default=None,
              help="Training batch (default: 16 clips on CPU, 128 on GPU; frame-trained systems keep their own).")
@click.option("--epochs", type=int, default=None,
              help="End-to-end epochs; the first is not timed (default: enough for about 10 s of timed epochs, at least 3).")
@click.option("--steps", default=BenchSpec.steps, show_default=True,
              help="Model-only timings: at least this many steps, and at least --min-seconds.")
@click.option("--min-seconds", default=BenchSpec.min_seconds, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Config overrides for every row.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the rows, and the machine, as JSON.")
def bench_command(systems: list[str], variants: list[str], clips: int, seconds: float, batch_size: int | None, epochs: int | None, steps: int,
                  min_seconds: float, device: str, assignments: tuple[str, ...], json_path: Path | None) -> None:
    """Measure training and inference throughput, end to end and model-only, per system and variant.

    Generated clips in the DCASE 2020 Task 2 layout go through the real runner (decoding,
    caches, features, epochs, checkpoints); the model-only bound times the same step on
    tensors already in memory. Prints figures; asserts nothing.
    """
    import torch  # here, not at the top: `bench --help` does not wait for it

    from asdbench.plugins import get_plugins
    from asdbench.scale.bench import run_bench

    spec = BenchSpec(clips=clips, seconds=seconds, batch_size=batch_size, epochs=epochs, steps=steps,
                     min_seconds=min_seconds, device=device, overrides=parse_assignments(assignments))
    machine = {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    with err_console.status("Measuring...") as status:
        rows = run_bench(get_plugins(), systems, variants, spec,
                         on_row=lambda r: status.update(f"Measured {r['system']} {r['variant']}; measuring..."))
    table = Table(title=f"Throughput, {seconds:g} s clips, {clips} training clips, on {rows[0]['device'] if rows else device} "
                        f"({machine['processor']}, {machine['threads']} threads, {machine['cpu_capability']}, torch {machine['torch']})")
    for title, key, _ in COLUMNS:
        table.add_column(title, justify="left" if key in ("system", "variant", "precision", "memory_format") else "right")
    for row in rows:
        table.add_row(*_cells(row))
    wide_console().print(table)
    if json_path:
        json_path.write_text(json.dumps({"machine": machine, "spec": asdict(spec), "rows": rows}, indent=2) + "\n")
