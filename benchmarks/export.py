"""ONNX export per system: model file size, scoring throughput and latency of 10 s clips on this CPU, ONNX Runtime
against torch eager (and ``torch.compile`` with ``--compiled``), and how far the exported scores are from the
bundle's.

    python benchmarks/export.py --systems stgram-mfn,dcase-ae,idnn,mobilenetv2

Per system, a model is trained for one epoch on a few generated 10 s clips (the weights do not change the cost),
saved as a bundle, exported with ``asdbench export --format onnx``'s function, and both score the same 64 generated
clips in batches of ``--batch-size``; latency is the median time of one clip alone (batch 1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from score_files import train_bundle  # noqa: E402 - benchmarks/ is the script's folder

from asdbench.scale.bench import _cache_at, write_clips
from asdbench.serving.model import load_model
from asdbench.serving.onnx_export import export_onnx
from asdbench.serving.onnx_model import OnnxModel


def _size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def _rate(score, waves: list[np.ndarray], batch: int) -> float:
    score(waves[:batch])  # first-call allocations
    started = time.perf_counter()
    for start in range(0, len(waves), batch):
        score(waves[start: start + batch])
    return len(waves) / (time.perf_counter() - started)


def _latency_ms(score, wave: np.ndarray, repeats: int = 9) -> float:
    score([wave])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        score([wave])
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="stgram-mfn,dcase-ae,idnn,mobilenetv2")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--compiled", action="store_true", help="Also time torch.compile (about a minute per system).")
    args = parser.parse_args()
    console = Console(width=160)
    table = Table(title=f"ONNX export: {args.clips} clips of 10 s, batch {args.batch_size}, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads")
    for column in ("system", "bundle MB", "ONNX MB", "export s", "torch clips/s", "ONNX clips/s",
                   *(["compiled clips/s"] if args.compiled else []), "torch ms/clip", "ONNX ms/clip", "max rel diff"):
        table.add_column(column, justify="left" if column == "system" else "right", no_wrap=column == "system")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, _cache_at(Path(tmp) / "cache"):
        work = Path(tmp)
        write_clips(work / "train", 16, 8, 10.0)
        waves = [(0.05 * rng.standard_normal(160_000)).astype(np.float32) for _ in range(args.clips)]
        for system in args.systems.split(","):
            with console.status(f"{system}: training a bundle..."):
                bundle = train_bundle(system, work / "train", work / f"bundle-{system}", 10.0, "cpu")
            model = load_model(bundle, "cpu")
            machine = model.machines[0]
            started = time.perf_counter()
            with console.status(f"{system}: exporting..."):
                export_onnx(model, work / f"onnx-{system}")
            exported_in = time.perf_counter() - started
            onnx = OnnxModel(work / f"onnx-{system}")

            def eager(batch, model=model, machine=machine):
                return model.score_items(list(range(len(batch))), [machine] * len(batch), lambda i, n: batch[i],
                                         len(batch))

            def runtime(batch, onnx=onnx, machine=machine):
                return onnx.scores(batch, [machine] * len(batch), len(batch))

            reference, exported = eager(waves[:16]), runtime(waves[:16])
            row = [system, f"{_size_mb((bundle / 'weights').iterdir()):.2f}",
                   f"{_size_mb((work / f'onnx-{system}').glob('*.onnx')):.2f}", f"{exported_in:.0f}",
                   f"{_rate(eager, waves, args.batch_size):.1f}", f"{_rate(runtime, waves, args.batch_size):.1f}"]
            if args.compiled:
                for slug in model._models:
                    model._models[slug].network.backbone = torch.compile(model._models[slug].network.backbone)
                row.append(f"{_rate(eager, waves, args.batch_size):.1f}")
            row += [f"{_latency_ms(eager, waves[0]):.1f}", f"{_latency_ms(runtime, waves[0]):.1f}",
                    f"{float(np.max(np.abs(exported - reference) / np.abs(reference))):.1e}"]
            table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
