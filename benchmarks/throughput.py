"""Training and inference throughput of systems on generated clips, with peak memory.

    python benchmarks/throughput.py --systems stgram-mfn --seconds 10 --batch-size 32
    python benchmarks/throughput.py --systems stgram-mfn,stgram-mfn-cee --batch-size 128 --device cuda

Each figure is measured on random 16 kHz waveforms held in memory (the model's cost,
not the disk's), with the same step the runner trains with (forward, backward, Adam),
after warm-up steps. Prints a rich table and, with ``--json``, writes the same figures.
The projected wall time of the paper protocol is ``clips x epochs / training throughput``.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import parse_assignments, resolve
from asdbench.plugins import get_plugins
from asdbench.runtime import describe_device, pick_device, seed_everything
from asdbench.train import autocast, make_optimizer, prepare, resolve_precision, settings_from, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(system: str, seconds: float, batch_size: int, classes: int, steps: int, warmup: int,
            device_name: str, overrides: dict) -> dict:
    plugins = get_plugins()
    config = resolve(plugins, system, set_values={"batch_size": batch_size, "device": device_name, **overrides})
    device = pick_device(config["device"])
    seed_everything(0)
    num_samples = int(seconds * 16000)
    frontend = instantiate(plugins, config, "frontend", sample_rate=16000, num_samples=num_samples)
    model, scorer = build_model(plugins, config, frontend, frontend.output_shape(num_samples), classes)
    settings = settings_from(config)
    prepare(model, device, settings.channels_last)
    amp = resolve_precision(settings.precision, device)
    optimizer = make_optimizer(model, settings)
    x = (torch.randn(batch_size, num_samples) * 0.1).to(device)
    y = torch.randint(0, classes, (batch_size,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    model.train()
    for _ in range(warmup):
        train_step(model, optimizer, x, y, False, amp, settings.grad_clip)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, x, y, False, amp, settings.grad_clip)
    _sync(device)
    train_rate = steps * batch_size / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad(), autocast(device, amp):
        for _ in range(warmup):
            scorer.score(model(x, False), y, model.loss)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            scorer.score(model(x, False), y, model.loss)
        _sync(device)
    infer_rate = steps * batch_size / (time.perf_counter() - start)
    return {
        "system": system,
        "device": describe_device(device),
        "precision": str(amp).replace("torch.", "") if amp else "fp32",
        "memory_format": "channels_last" if settings.channels_last else "nchw",
        "clip_seconds": seconds,
        "batch_size": batch_size,
        "n_params": count_parameters(model),
        "train_clips_per_s": round(train_rate, 2),
        "infer_clips_per_s": round(infer_rate, 2),
        "peak_memory_mb": round(_peak_mb(device), 1),
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
    }


@click.command()
@click.option("--systems", default="stgram-mfn", show_default=True, help="Comma-separated systems trained on whole clips.")
@click.option("--seconds", default=10.0, show_default=True, help="Clip length.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--classes", default=41, show_default=True, help="Machine IDs (41 in DCASE 2020 T2).")
@click.option("--steps", default=5, show_default=True, help="Timed steps.")
@click.option("--warmup", default=2, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--clips", default=40_000, show_default=True, help="Training clips of the paper protocol (dev + additional).")
@click.option("--epochs", default=200, show_default=True, help="Epochs of the paper protocol.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Config overrides, e.g. precision=fp32.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def main(systems, seconds, batch_size, classes, steps, warmup, device, clips, epochs, assignments, json_path) -> None:
    overrides = parse_assignments(assignments)
    rows = []
    for system in [s.strip() for s in systems.split(",") if s.strip()]:
        row = measure(system, seconds, batch_size, classes, steps, warmup, device, overrides)
        row["paper_protocol_hours"] = round(clips * epochs / row["train_clips_per_s"] / 3600, 2)
        rows.append(row)
    table = Table(title=f"Throughput, {seconds:g} s clips, batch {batch_size} ({platform.processor() or platform.machine()}, "
                        f"{torch.get_num_threads()} threads, torch {torch.__version__})")
    for col in ("system", "device", "precision", "memory", "params", "train clips/s", "infer clips/s", "peak MB", "paper protocol (h)"):
        table.add_column(col, justify="left" if col in ("system", "device", "precision", "memory") else "right")
    for r in rows:
        table.add_row(r["system"], r["device"], r["precision"], r["memory_format"], f"{r['n_params']:,}", f"{r['train_clips_per_s']:.1f}",
                      f"{r['infer_clips_per_s']:.1f}", f"{r['peak_memory_mb']:.0f}", f"{r['paper_protocol_hours']:.1f}")
    Console(width=160).print(table)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
