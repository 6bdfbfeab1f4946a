"""A trained model per system and format: model file size, scoring throughput and latency of 10 s clips on this CPU,
resident memory, and how far each format's scores are from the bundle's (torch eager): torch eager, ``torch.compile``
(``--compiled``), ONNX Runtime on the exported graph, and on its INT8 version.

    python benchmarks/export.py --systems stgram-mfn,dcase-ae,idnn,mobilenetv2 --compiled

Per system, a model is trained for one epoch on a few generated 10 s clips (the weights do not change the cost),
saved as a bundle, exported with ``asdbench export --format onnx``'s functions (INT8: calibrated on the training
clips). Each format then scores the same ``--clips`` generated clips in a fresh process of its own, as
``asdbench score`` would run it (the ONNX ones never import torch): clips/s in batches of ``--batch-size``, latency as
the median time of one clip alone (batch 1), the process's resident memory once the model is loaded and scored one
batch, and its peak while scoring (imports included: that is what a deployment pays).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORMATS = ("torch", "compiled", "onnx", "onnx-int8")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rate(score, waves: np.ndarray, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(waves), batch):
        score(waves[start: start + batch])
    return len(waves) / (time.perf_counter() - started)


def _latency_ms(score, wave: np.ndarray, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        score(wave[None])
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _scorer(fmt: str, folder: Path):
    """``batch -> scores`` of the model in ``folder`` for its first machine, in the format's runtime."""
    if fmt.startswith("onnx"):
        from asdbench.serving.onnx_model import OnnxModel

        onnx = OnnxModel(folder)
        machine = onnx.machines[0]
        return lambda batch: onnx.scores(list(batch), [machine] * len(batch), len(batch))
    import torch

    from asdbench.serving.model import load_model

    model = load_model(folder, "cpu")
    machine = model.machines[0]
    if fmt == "compiled":
        for entry in model._models.values():
            entry.network.backbone = torch.compile(entry.network.backbone)
    return lambda batch: model.score_items(list(range(len(batch))), [machine] * len(batch),
                                           lambda i, n: batch[i], len(batch))


def measure(fmt: str, folder: Path, waves_path: Path, batch: int) -> dict:
    """In this process (a fresh one): load, score a batch and a clip (first-call work, compilation), then time."""
    waves = np.load(waves_path)
    score = _scorer(fmt, folder)
    score(waves[:batch])
    score(waves[:1])
    loaded = _status_mb("VmRSS")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
    rate = _rate(score, waves, batch)
    latency = _latency_ms(score, waves[0])
    return {"clips_per_s": rate, "ms_per_clip": latency, "loaded_mb": loaded, "peak_mb": _status_mb("VmHWM"),
            "scores": [float(s) for s in score(waves[:16])]}


def _measure_in_new_process(fmt: str, folder: Path, waves: Path, batch: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--measure", fmt, str(folder), str(waves), "--batch-size",
                           str(batch)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{fmt} on {folder}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="stgram-mfn,dcase-ae,idnn,mobilenetv2")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--compiled", action="store_true", help="Also time torch.compile (about a minute per system).")
    parser.add_argument("--measure", nargs=3, metavar=("FORMAT", "FOLDER", "WAVES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        fmt, folder, waves = args.measure
        print(json.dumps(measure(fmt, Path(folder), Path(waves), args.batch_size)))
        return
    import torch
    from rich.console import Console
    from rich.table import Table
    from score_files import train_bundle  # noqa: E402 - benchmarks/ is the script's folder

    from asdbench.scale.bench import _cache_at, write_clips
    from asdbench.serving.decision import wav_files
    from asdbench.serving.model import load_model
    from asdbench.serving.onnx_export import export_onnx
    from asdbench.serving.onnx_quantize import quantize_int8

    console = Console(width=160)
    table = Table(title=f"{args.clips} clips of 10 s, batch {args.batch_size}, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads; each format in a fresh process")
    for column in ("system", "format", "model MB", "export s", "clips/s", "ms/clip", "RSS loaded MB", "peak RSS MB",
                   "max rel diff"):
        table.add_column(column, justify="left" if column in ("system", "format") else "right", no_wrap=True)
    formats = [f for f in FORMATS if args.compiled or f != "compiled"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, _cache_at(Path(tmp) / "cache"):
        work = Path(tmp)
        write_clips(work / "train", 16, 8, 10.0)
        np.save(work / "waves.npy", (0.05 * rng.standard_normal((args.clips, 160_000))).astype(np.float32))
        for system in args.systems.split(","):
            with console.status(f"{system}: training a bundle..."):
                # glow's one epoch on generated noise diverges at its lr: the cost of scoring does not depend on it
                values = {"lr": 1e-5} if system == "glow-aff" else {}
                bundle = train_bundle(system, work / "train", work / f"bundle-{system}", 10.0, "cpu", **values)
            folders = {"torch": bundle, "compiled": bundle, "onnx": work / f"onnx-{system}",
                       "onnx-int8": work / f"int8-{system}"}
            sizes = {"torch": _size_mb((bundle / "weights").iterdir())}
            sizes["compiled"] = sizes["torch"]
            seconds = {}
            for fmt in ("onnx", "onnx-int8"):
                started = time.perf_counter()
                with console.status(f"{system}: exporting ({fmt})..."):
                    export_onnx(load_model(bundle, "cpu"), folders[fmt])
                    if fmt == "onnx-int8":
                        quantize_int8(folders[fmt], wav_files([work / "train"]), work / "train")
                seconds[fmt] = time.perf_counter() - started
                sizes[fmt] = _size_mb(folders[fmt].glob("*.onnx"))
            reference = None
            for fmt in formats:
                with console.status(f"{system}: scoring ({fmt})..."):
                    row = _measure_in_new_process(fmt, folders[fmt], work / "waves.npy", args.batch_size)
                scores = np.array(row["scores"])
                reference = scores if reference is None else reference
                cells = (system, fmt, f"{sizes[fmt]:.2f}", f"{seconds[fmt]:.0f}" if fmt in seconds else "",
                         f"{row['clips_per_s']:.1f}", f"{row['ms_per_clip']:.1f}", f"{row['loaded_mb']:.0f}",
                         f"{row['peak_mb']:.0f}", f"{np.max(np.abs(scores - reference) / np.abs(reference)):.1e}")
                table.add_row(*cells)
                console.print(" | ".join(cells), highlight=False)  # as it comes: a long run's rows are not lost
            table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
