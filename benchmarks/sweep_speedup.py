"""Wall time of one sweep with 1 and with 2 local Ray workers, and the speed-up: what a grid gains from Ray here.

    python benchmarks/sweep_speedup.py --suite benchmarks/suites/speedup.toml --clips-per-s 1535

Each sweep runs in a fresh MLflow store and cache (nothing skipped, data generated once beforehand),
as ``asdbench sweep`` runs it, Ray start-up included. Then the arithmetic of the paper's grid:
with ``--clips-per-s`` (the training throughput of one run on one GPU, from ``asdbench bench``),
hours on k GPUs for 9 systems x 5 seeds x 200 epochs x 40,000 clips.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER_RUNS, PAPER_EPOCHS, PAPER_CLIPS = 9 * 5, 200, 40_000


def timed_sweep(suite: Path, workers: int, folder: Path, cache: Path) -> float:
    env = {**os.environ, "ASDBENCH_CACHE": str(cache), "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    folder.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asdbench", "sweep", str(suite), "--workers", str(workers)], env=env,
                   cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, default=Path(__file__).parent / "suites" / "speedup.toml")
    parser.add_argument("--clips-per-s", type=float, default=None,
                        help="One run's training throughput on one GPU, for the paper-grid arithmetic.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        subprocess.run([sys.executable, "-m", "asdbench", "sweep", str(args.suite), "--workers", "1"],
                       env={**os.environ, "ASDBENCH_CACHE": str(cache),
                            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'warm.db'}"},
                       cwd=work, check=True, capture_output=True)  # generates the data; not timed
        one = timed_sweep(args.suite, 1, work / "one", cache)
        two = timed_sweep(args.suite, 2, work / "two", cache)
    print(f"{args.suite.name}: 1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x "
          f"({os.cpu_count()} CPUs)")
    if args.clips_per_s:
        hours = PAPER_RUNS * PAPER_EPOCHS * PAPER_CLIPS / args.clips_per_s / 3600
        for gpus in (1, 2, 4, 8):
            print(f"paper grid ({PAPER_RUNS} runs x {PAPER_EPOCHS} epochs x {PAPER_CLIPS} clips) at "
                  f"{args.clips_per_s:g} clips/s per GPU: {hours / gpus:.1f} h on {gpus} GPU(s)")


if __name__ == "__main__":
    main()
