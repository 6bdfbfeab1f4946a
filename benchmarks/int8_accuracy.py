"""What INT8 quantisation costs in detection: a trained model's ONNX export against its INT8 version (calibrated on
the data set's normal training recordings), AUC and pAUC per machine ID on the data set's test clips.

    asdbench run dcase-ae --dataset synthetic            # any trained run
    python benchmarks/int8_accuracy.py RUN_ID --data ~/.cache/asdbench/synthetic/full-seed2020-v2

``--data`` is a folder in the DCASE 2020 layout (``<type>/train``, ``<type>/test`` with ``normal_``/``anomaly_``
names): the run's own data set. Needs the model's store (``--tracking-uri`` or MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from asdbench.evaluation.metrics import auc, pauc
from asdbench.serving.decision import wav_files
from asdbench.serving.model import load_model
from asdbench.serving.onnx_export import export_onnx
from asdbench.serving.onnx_model import OnnxModel
from asdbench.serving.onnx_quantize import quantize_int8


def _metrics(folder: Path, files: list[Path]) -> dict[str, tuple[float, float]]:
    by_machine: dict[str, tuple[list[int], list[float]]] = {}
    for d in OnnxModel(folder).score_files(files).decisions:
        labels, scores = by_machine.setdefault(f"{d.machine_type}/id_{d.machine_id}", ([], []))
        labels.append(int(d.path.name.startswith("anomaly")))
        scores.append(d.score)
    return {m: (100 * auc(*v), 100 * pauc(*v)) for m, v in sorted(by_machine.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="run ID, runs:/ID/model, or a bundle folder")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    console = Console(width=140)
    train = wav_files(sorted(args.data.glob("*/train")))
    test = wav_files(sorted(args.data.glob("*/test")))
    with tempfile.TemporaryDirectory() as tmp:
        float_folder, int8_folder = Path(tmp) / "float", Path(tmp) / "int8"
        model = load_model(args.model, "cpu", tracking_uri=args.tracking_uri)
        with console.status("Exporting..."):
            export_onnx(model, float_folder)
            export_onnx(model, int8_folder)
        started = time.perf_counter()
        with console.status(f"Quantising on {len(train)} training recordings..."):
            quantize_int8(int8_folder, train, args.data)
        quantised_in = time.perf_counter() - started
        with console.status(f"Scoring {len(test)} test clips twice..."):
            before, after = _metrics(float_folder, test), _metrics(int8_folder, test)
    table = Table(title=f"{model.system}: ONNX float32 vs INT8 (calibrated on {len(train)} recordings in "
                        f"{quantised_in:.0f} s), {len(test)} test clips")
    for column in ("machine", "AUC float", "AUC INT8", "change", "pAUC float", "pAUC INT8", "change"):
        table.add_column(column, justify="left" if column == "machine" else "right")
    for machine in before:
        (a, p), (a8, p8) = before[machine], after[machine]
        table.add_row(machine, f"{a:.2f}", f"{a8:.2f}", f"{a8 - a:+.2f}", f"{p:.2f}", f"{p8:.2f}", f"{p8 - p:+.2f}")
    mean = [sum(v[i] for v in d.values()) / len(d) for d in (before, after) for i in (0, 1)]
    table.add_row("average", f"{mean[0]:.2f}", f"{mean[2]:.2f}", f"{mean[2] - mean[0]:+.2f}", f"{mean[1]:.2f}",
                  f"{mean[3]:.2f}", f"{mean[3] - mean[1]:+.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
