"""Scoring throughput and memory of a trained model on many WAV files: what ``asdbench score`` does.

    python benchmarks/score_files.py --systems stgram-mfn,dcase-ae --files 1000 --seconds 10

Per system, a model is trained for one epoch on a few generated clips (its weights do not change the cost
of scoring), saved as a bundle and loaded back as ``asdbench score`` loads it; then ``--files`` generated
10 s WAV files in the DCASE 2020 layout are scored, read from disk, in batches of ``--batch-size``. Printed
per system: clips/s, and the resident memory of a fresh process that only loads the model and scores (as
``asdbench score`` runs): once the model is loaded and scored one batch, and its peak while scoring the
rest, for a tenth of the files and for all of them: streaming in batches keeps the peak flat as the file
count grows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.plugins import get_plugins
from asdbench.progress import Reporter
from asdbench.runtime import pick_device
from asdbench.scale.bench import PeakMemory, _cache_at, write_clips
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.model import load_model, wav_files
from asdbench.training.runner import execute


def train_bundle(system: str, data: Path, folder: Path, seconds: float, device: str, **values) -> Path:
    plugins = get_plugins()
    plan = make_plan(plugins, resolve(plugins, system, set_values={
        "dataset": "dcase2020t2", "dataset.root": str(data), "epochs": 1, "batch_size": 8, "device": device,
        "clip_seconds": seconds, **values}))
    result = execute(plugins, plan, Reporter())
    return write_bundle(folder, manifest(plan.config, plugins, result, plan.dataset.sample_rate, result.num_samples),
                        result.models)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(bundle: Path, folder: Path, count: int, batch_size: int, device: str) -> dict[str, float]:
    """In this process (a fresh one): load, score one batch (first-call allocations), then time the rest."""
    files = wav_files([folder])[:count]
    memory = PeakMemory(pick_device(device))
    model = load_model(bundle, device)
    model.score(files[:batch_size], batch_size=batch_size)
    loaded = _rss_mb()
    memory.reset()
    start = time.perf_counter()
    model.score(files, batch_size=batch_size)
    seconds = time.perf_counter() - start
    return {"files": len(files), "clips_per_s": len(files) / seconds, "seconds": seconds, "loaded_mb": loaded,
            "peak_mb": memory.mb()}


def measure_in_new_process(bundle: Path, folder: Path, count: int, batch_size: int, device: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--measure", str(bundle), str(folder), "--files", str(count),
                           "--batch-size", str(batch_size), "--device", device], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="stgram-mfn,dcase-ae")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--measure", nargs=2, type=Path, metavar=("BUNDLE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.files, args.batch_size, args.device)))
        return
    console = Console()
    table = Table(title=f"Scoring {args.files} files of {args.seconds:g} s, batch {args.batch_size}, {args.device}, "
                        f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for column in ("system", "files", "clips/s", "wall (s)", "RSS, model loaded (MB)", "peak RSS scoring (MB)"):
        table.add_column(column, justify="left" if column == "system" else "right")
    with tempfile.TemporaryDirectory() as tmp, _cache_at(Path(tmp) / "cache"):
        work = Path(tmp)
        with console.status(f"Writing {args.files} WAV files..."):
            write_clips(work / "train", 16, 8, args.seconds)
            files = write_clips(work / "score", 0, args.files, args.seconds, seed=1) / "fan" / "test"
        for system in args.systems.split(","):
            with console.status(f"{system}: training a bundle..."):
                bundle = train_bundle(system, work / "train", work / f"bundle-{system}", args.seconds, args.device)
            for count in (max(1, args.files // 10), args.files):
                with console.status(f"{system}: scoring {count} files..."):
                    row = measure_in_new_process(bundle, files, count, args.batch_size, args.device)
                table.add_row(system, str(count), f"{row['clips_per_s']:.1f}", f"{row['seconds']:.1f}",
                              f"{row['loaded_mb']:.0f}", f"{row['peak_mb']:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
