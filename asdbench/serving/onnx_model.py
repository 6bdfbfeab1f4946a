"""Scoring with an exported ONNX model (:mod:`asdbench.serving.onnx_export`) and ONNX Runtime alone: no torch, no
plugins. WAV files are read as the run read its clips (its channel rule, cut or padded to the clip length by its
padding rule); another sample rate is resampled with SciPy's polyphase filter (torchaudio's sinc filter needs torch),
so only such files can score slightly differently from the bundle."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from asdbench.audio import fit_length, read_wav, wav_format
from asdbench.errors import AsdbenchError, reason
from asdbench.serving.calibration import Override
from asdbench.serving.decision import DEFAULT_BATCH, Decision, Scored, machine_of

FORMAT = "asdbench-onnx"  # as onnx_export writes; repeated here so that reading needs no torch


def is_onnx_folder(source: str | Path) -> bool:
    path = Path(source).expanduser() / "manifest.json"
    try:
        return path.is_file() and json.loads(path.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


class OnnxModel:
    """An exported model: ``score`` as :class:`asdbench.serving.model.TrainedModel` scores files."""

    def __init__(self, folder: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise AsdbenchError(f"{folder} is an ONNX model: scoring it needs onnxruntime "
                                "(pip install onnxruntime)") from None
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.system, self.device = self.manifest["system"], "onnxruntime"
        self.sample_rate, self.channel = int(self.manifest["sample_rate"]), self.manifest["channel"]
        self.unit = self.manifest["unit"]
        self._sessions, self._owner, self._class = {}, {}, {}
        for slug, entry in self.manifest["models"].items():
            try:
                self._sessions[slug] = onnxruntime.InferenceSession(str(folder / entry["graph"]),
                                                                    providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for unreadable graphs
                raise AsdbenchError(f"{folder / entry['graph']} is not a readable ONNX graph ({reason(exc)})") from None
            for name, index in entry["classes"].items():
                machine = self._machine(name)
                self._owner[machine], self._class[machine] = slug, int(index)
        self.thresholds = {self._machine(n): float(t["value"]) for n, t in self.manifest["thresholds"].items()}
        self.normal_scores = {self._machine(n): list(t.get("train_scores", []))
                              for n, t in self.manifest["thresholds"].items()}

    def _machine(self, name: str) -> tuple[str, str]:
        machine_type, unit = name.split("/")[:2]
        return machine_type, unit[len(self.unit) + 1:]

    def name(self, machine: tuple[str, str]) -> str:
        return f"{machine[0]}/{self.unit}_{machine[1]}"

    @property
    def machines(self) -> list[tuple[str, str]]:
        return sorted(self._owner)

    def machine_of(self, path: Path, machine_type: str | None = None, machine_id: str | None = None) -> tuple[str, str]:
        return machine_of(path, self._owner, self.unit, machine_type, machine_id)

    def scores(self, waves: Sequence[np.ndarray], machines: Sequence[tuple[str, str]],
               batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Scores of signals at the model's rate (each cut or padded to its model's clip length), in order."""
        out = np.empty(len(waves), dtype=np.float64)
        rows_of: dict[str, list[int]] = {}
        for row, machine in enumerate(machines):
            rows_of.setdefault(self._owner[machine], []).append(row)
        for slug, rows in rows_of.items():
            for start in range(0, len(rows), batch_size):
                chunk = rows[start: start + batch_size]
                inputs = self.inputs([waves[r] for r in chunk], [machines[r] for r in chunk])
                out[chunk] = self._sessions[slug].run(["score"], inputs)[0]
        return out

    def owner(self, machine: tuple[str, str]) -> str:
        """The model (graph) that decides for ``machine``."""
        return self._owner[machine]

    def inputs(self, waves: Sequence[np.ndarray], machines: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """A batch of one model's graph: each signal cut or padded to its clip length, with its machine's class."""
        length = self._length(machines[0])
        batch = np.stack([fit_length(w, length, self.manifest["pad"]) for w in waves]).astype(np.float32)
        return {"waveform": batch, "class_index": np.array([self._class[m] for m in machines], dtype=np.int64)}

    def read(self, path: Path, machine: tuple[str, str]) -> np.ndarray:
        """A WAV file as the run read its clips (channel rule, clip length), at the model's rate, without torch."""
        return read_wav(path, self.sample_rate, self.channel, self._length(machine), torch_free=True)

    def _length(self, machine: tuple[str, str]) -> int:
        return int(self.manifest["models"][self._owner[machine]]["num_samples"])

    def score_files(self, paths: Sequence[Path], machine_type: str | None = None, machine_id: str | None = None,
                    batch_size: int = DEFAULT_BATCH, on_batch: Callable[[int], None] = lambda n: None,
                    skip_bad_files: bool = False) -> Scored:
        """Headers first: a bad file stops the job before anything is scored, or with ``skip_bad_files`` is listed."""
        bad = []
        for path in paths:
            try:
                wav_format(path, scan=False)
            except AsdbenchError as exc:
                bad.append((path, str(exc)))
        if bad and not skip_bad_files:
            raise AsdbenchError(f"{bad[0][1]}; nothing was scored. Replace the file, or pass --skip-bad-files")
        paths = [p for p in paths if p not in {b for b, _ in bad}]
        machines = [self.machine_of(p, machine_type, machine_id) for p in paths]
        decisions = []
        for start in range(0, len(paths), batch_size):
            chunk = list(range(start, min(len(paths), start + batch_size)))
            waves = [self.read(paths[i], machines[i]) for i in chunk]
            values = self.scores(waves, [machines[i] for i in chunk], batch_size)
            for i, value in zip(chunk, values):
                if not np.isfinite(value):
                    raise AsdbenchError(f"{paths[i]}: the model's score is not finite, so no decision can be made")
                decisions.append(Decision(paths[i], *machines[i], float(value), self.thresholds[machines[i]]))
            on_batch(len(chunk))
        return Scored(decisions, bad)

    def override_thresholds(self, override: Override) -> None:
        self.thresholds = override.apply(self.thresholds, self.normal_scores, self.name)
