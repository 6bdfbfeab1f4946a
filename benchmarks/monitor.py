"""Real-time factor of ``asdbench monitor``: seconds of audio scored per second of computing, per system.

    python benchmarks/monitor.py --systems stgram-mfn,dcase-ae --minutes 5 --hop 1

Per system, a model is trained for one epoch on a few generated 10 s clips (its weights do not change the cost
of scoring), saved as a bundle and loaded as ``asdbench monitor`` loads it; then a generated recording of
``--minutes`` minutes is watched from its WAV file, block by block, with windows of the model's clip length every
``--hop`` seconds (and end to end, ``--hop 0``), as the command does. Printed per system and hop: windows, the
real-time factor (20x: one such stream takes a twentieth of this machine; the goal for STgram-MFN on 2 cores), and
the latency of one batch of windows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from score_files import train_bundle  # noqa: E402 - benchmarks/ is the script's folder

from asdbench.audio import write_wav
from asdbench.cli.monitor_cmd import MONITOR_BATCH
from asdbench.scale.bench import _cache_at, write_clips
from asdbench.serving.model import load_model
from asdbench.serving.monitor import Monitor, Progress
from asdbench.serving.sources import wav_blocks

SAMPLE_RATE = 16_000


def long_recording(path: Path, minutes: float) -> Path:
    rng = np.random.default_rng(2)
    n = int(minutes * 60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    write_wav(path, (0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * 120 * t)).astype(np.float32), SAMPLE_RATE)
    return path


def watch(bundle: Path, recording: Path, hop: float, batch_size: int, device: str) -> dict[str, float]:
    model = load_model(bundle, device)
    machine = model.machines[0]
    for _ in Monitor(model, machine, hop, 0.0, batch_size, Progress()).watch(  # first-call allocations, not timed
            "warm-up", [np.zeros(model.clip_samples(machine) + round(hop * model.sample_rate) * 8, np.float32)]):
        pass
    progress = Progress()
    monitor = Monitor(model, machine, hop, 0.0, batch_size, progress)
    started = time.perf_counter()
    for _ in monitor.watch(str(recording), wav_blocks(recording, model.sample_rate, model.channel)):
        pass
    wall = time.perf_counter() - started
    return {"windows": progress.windows, "rtf": progress.real_time_factor, "rtf_wall": progress.audio_seconds / wall,
            "ms_per_window": 1000 * progress.compute_seconds / max(1, progress.windows),
            "window_s": model.clip_samples(machine) / model.sample_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="stgram-mfn,dcase-ae")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--hops", default="1,0", help="Seconds between windows, comma list (0: end to end).")
    parser.add_argument("--batch-size", type=int, default=MONITOR_BATCH)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"monitor: a {args.minutes:g}-minute WAV, {args.device}, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads")
    for column in ("system", "window (s)", "hop (s)", "windows", "x real time (scoring)", "x real time (wall)",
                   "ms per window"):
        table.add_column(column, justify="left" if column == "system" else "right", no_wrap=column == "system")
    with tempfile.TemporaryDirectory() as tmp, _cache_at(Path(tmp) / "cache"):
        work = Path(tmp)
        write_clips(work / "train", 16, 8, 10.0)
        recording = long_recording(work / "long_id_00.wav", args.minutes)
        for system in args.systems.split(","):
            with console.status(f"{system}: training a bundle..."):
                bundle = train_bundle(system, work / "train", work / f"bundle-{system}", 10.0, args.device)
            for hop in (float(h) for h in args.hops.split(",")):
                with console.status(f"{system}: watching, hop {hop:g} s..."):
                    row = watch(bundle, recording, hop, args.batch_size, args.device)
                table.add_row(system, f"{row['window_s']:g}", f"{hop:g}" if hop else "end to end", str(row["windows"]),
                              f"{row['rtf']:.1f}", f"{row['rtf_wall']:.1f}", f"{row['ms_per_window']:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
