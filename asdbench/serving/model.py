"""A trained model, loaded from its bundle: scores for new recordings, and decisions from calibrated thresholds.

The network of each model is rebuilt from the manifest's config by the same plugins and factories a run
uses, its weights read from safetensors, and clips are scored by the same batched function a run scores its
test set with (:func:`asdbench.evaluation.scoring.score_examples`): cut or padded to the run's clip length by the run's rule, at
the run's sample rate, in float32. So the scores of a run's test clips come back exactly.

    model = asdbench.load_model("runs:/<run id>")
    decisions = model.score(["recordings/"])
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asdbench.api import Scorer
from asdbench.audio import channel_signal, microphones, read_wav, resample, wav_format
from asdbench.build import AnomalyModel, build_frontend, build_model
from asdbench.config import RunConfig
from asdbench.data.examples import Examples, as_float, target_matrix
from asdbench.data.groups import alternatives, id_name
from asdbench.data.wave_cache import decode_into, wave_shape
from asdbench.errors import AsdbenchError
from asdbench.evaluation import fitted
from asdbench.evaluation.scoring import frame_scores, score_examples
from asdbench.plugins import Plugins, get_plugins
from asdbench.runtime import pick_device, prepare
from asdbench.serving.bundle import locate, read_manifest, read_weights, write_bundle
from asdbench.serving.calibration import Override, Rule, recalibrated
from asdbench.serving.decision import DEFAULT_BATCH, Decision, Scored, machine_of, wav_files


@dataclass(frozen=True)
class _Model:
    network: AnomalyModel
    scorer: Scorer
    classes: tuple[tuple[str, ...], ...]  # (type, ID) or (type, section, attributes), label order
    fit_state: dict[str, torch.Tensor]  # what the scorer was fitted on (asdbench.evaluation.fitted), if it fits
    num_samples: int  # the clip length it was trained on (its machine types' own), what its clips are cut or padded to


class TrainedModel:
    """The models of one run, ready to score. Built by :func:`load_model`."""

    def __init__(self, folder: Path, device: str = "auto", plugins: Plugins | None = None) -> None:
        self.manifest = read_manifest(folder)
        self.config = RunConfig(self.manifest["system"], self.manifest["config"], ())
        self.device = pick_device(device)
        self.sample_rate = int(self.manifest["sample_rate"])
        self.num_samples = int(self.manifest["num_samples"])
        self.channel = self.config.values.get("dataset.channel") or "first"  # as the run's data set read its clips
        self.microphones = microphones(self.channel)
        self.framed = self.config["train_unit"] == "frame"
        self.unit = self.manifest.get("unit", "id")  # what a machine ID is: an ID (DCASE 2020) or a section (2021+)
        self.evaluation = self.manifest.get("evaluation", "dcase2020")
        plugins = plugins or get_plugins()
        self._check_plugins(plugins, folder)
        self._models: dict[str, _Model] = {}
        self._owner: dict[tuple[str, str], str] = {}
        for slug, entry in self.manifest["models"].items():
            self._models[slug] = self._build(plugins, folder, slug, entry)
            for name in entry["decides"]:
                self._owner[self._machine(name)] = slug
        self._read_thresholds()

    def _read_thresholds(self) -> None:
        entries = self.manifest["thresholds"].items()
        self.thresholds = {self._machine(name): float(t["value"]) for name, t in entries}
        self.normal_scores = {self._machine(name): list(t.get("train_scores", [])) for name, t in entries}

    def override_thresholds(self, override: Override) -> None:
        """Decide with ``override``'s thresholds (``score --threshold`` / ``--fpr``) instead of the calibrated ones."""
        self.thresholds = override.apply(self.thresholds, self.normal_scores, self.name)

    def calibrate(self, paths: Sequence[Path], rule: Rule, sources: Sequence[Path], machine_type: str | None = None,
                  machine_id: str | None = None, batch_size: int = DEFAULT_BATCH,
                  on_batch: Callable[[int], None] = lambda n: None, skip_bad_files: bool = False) -> Scored:
        """Refit the thresholds of the machines ``paths`` (normal recordings, never seen in training) are of, on
        their scores, by ``rule``; the manifest records the calibration (:func:`recalibrated`). The scores are
        returned: :meth:`save` writes the recalibrated bundle."""
        scored = self.score_files(paths, machine_type, machine_id, batch_size, on_batch, skip_bad_files)
        by_machine: dict[str, list[float]] = {}
        for d in scored.decisions:
            by_machine.setdefault(self.name((d.machine_type, d.machine_id)), []).append(d.score)
        self.manifest = recalibrated(self.manifest, by_machine, rule, sources, len(scored.skipped))
        self._read_thresholds()
        return scored

    def _machine(self, name: str) -> tuple[str, ...]:
        """``fan/id_00`` as ``("fan", "00")``, ``fan/section_00/spd_A`` as ``("fan", "00", "spd_A")``."""
        machine_type, unit, *attributes = name.split("/")
        return (machine_type, unit[len(self.unit) + 1:], *attributes)

    def name(self, machine: tuple[str, str]) -> str:
        return id_name(*machine, self.unit)

    @property
    def system(self) -> str:
        return self.manifest["system"]

    @property
    def machines(self) -> list[tuple[str, str]]:
        """The (machine type, ID) pairs this model decides for."""
        return sorted(self._owner)

    def _check_plugins(self, plugins: Plugins, folder: Path) -> None:
        for kind in ("frontend", "backbone", "loss", "scorer"):
            name = self.config.component(kind)
            if name not in plugins.registry(kind):
                built = self.manifest.get("plugins", {}).get(kind, {})
                raise AsdbenchError(f"the model in {folder} needs the {kind} plugin '{name}' of package "
                                    f"{built.get('package', '?')} {built.get('package_version', '')}, which is not "
                                    "installed here (see `asdbench list`)")

    def _build(self, plugins: Plugins, folder: Path, slug: str, entry: dict) -> _Model:
        classes = tuple(self._machine(name) for name in entry["classes"])
        num_samples = int(entry.get("num_samples", self.num_samples))  # bundles of one clip length for all models
        frontend = build_frontend(plugins, self.config, self.sample_rate, num_samples, self.microphones)
        network, scorer = build_model(plugins, self.config, frontend, tuple(entry["input_shape"]), len(classes))
        weights, fit_state = fitted.split_state(read_weights(folder, entry))
        try:
            network.load_state_dict(weights)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0][:200]
            raise AsdbenchError(f"{folder / entry['weights']} does not fit the model its manifest describes "
                                f"({reason})") from None
        prepare(network, self.device, self.config["channels_last"]).eval()
        if fitted.fitted_at_all(scorer):
            if not fit_state:
                raise AsdbenchError(f"{folder / entry['weights']} lacks the fit of its scorer "
                                    f"'{self.config.component('scorer')}' (what it learned from the training data)")
            fitted.restore(scorer, fit_state, network.loss)
        return _Model(network, scorer, classes, fit_state, num_samples)

    def save(self, folder: Path) -> Path:
        """Write this model as a bundle folder (``asdbench export``)."""
        return write_bundle(folder, self.manifest, {slug: {**m.network.state_dict(), **m.fit_state}
                                                    for slug, m in self._models.items()})

    def machine_of(self, path: Path, machine_type: str | None = None, machine_id: str | None = None) -> tuple[str, str]:
        """The machine a recording is of (:func:`asdbench.serving.decision.machine_of`)."""
        return machine_of(path, self._owner, self.unit, machine_type, machine_id)

    def as_signal(self, data: np.ndarray, rate: int, where: str) -> np.ndarray:
        """``(frames, channels)`` samples at ``rate`` (a recording sent to a served model) as the run's data set read
        its clips: its channel rule, resampled to the model's rate."""
        wave = channel_signal(np.asarray(data, dtype=np.float32), self.channel, where)
        if rate != self.sample_rate:
            wave = resample(wave, rate, self.sample_rate)
        return np.ascontiguousarray(wave, dtype=np.float32)

    def clip_samples(self, machine: tuple[str, str]) -> int:
        """The clip length, in samples, of the model that decides for ``machine``: what a monitor's window is."""
        return self._models[self._owner[machine]].num_samples

    def score(self, files: Iterable[str | Path], machine_type: str | None = None, machine_id: str | None = None,
              batch_size: int = DEFAULT_BATCH, on_batch: Callable[[int], None] = lambda n: None) -> list[Decision]:
        """Score WAV files (folders: every ``*.wav`` below them, sorted) and decide on each. Any sample rate and
        channel count is read as the run's data set read its clips (see :func:`asdbench.audio.read_wav`); a bad
        file is an error naming it, before anything is scored where its header shows it."""
        return self.score_files(wav_files(files), machine_type, machine_id, batch_size, on_batch).decisions

    def score_files(self, paths: Sequence[Path], machine_type: str | None = None, machine_id: str | None = None,
                    batch_size: int = DEFAULT_BATCH, on_batch: Callable[[int], None] = lambda n: None,
                    skip_bad_files: bool = False) -> Scored:
        """:meth:`score` of the files ``paths``; with ``skip_bad_files`` a file that cannot be scored (a bad
        header, undecodable or non-finite samples, a score that is not finite) is left out and listed with its
        reason, and the others are scored. Headers are read first: a job of 300 files does not stop at the end."""
        bad: list[tuple[Path, str]] = []
        for path in paths:
            try:
                wav_format(path, scan=False)  # non-finite samples are found as they are decoded: only the start is
            except AsdbenchError as exc:
                bad.append((path, str(exc)))
        if bad and not skip_bad_files:
            more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
            raise AsdbenchError(f"{bad[0][1]}{more}; nothing was scored. Replace the file, or pass --skip-bad-files "
                                "to score the others")
        paths = [p for p in paths if p not in {b for b, _ in bad}]
        machines = [self.machine_of(p, machine_type, machine_id) for p in paths]
        channel = self.channel
        failed: dict[Path, str] = {}

        def load(path: Path, num_samples: int) -> np.ndarray:
            try:
                return read_wav(path, self.sample_rate, channel, num_samples)
            except AsdbenchError as exc:
                if not skip_bad_files:
                    raise
                failed[path] = str(exc)
                return np.zeros(1, dtype=np.float32)  # scored, then left out

        values = self.score_items(paths, machines, load, batch_size, on_batch)
        for path, value in zip(paths, values):
            if path not in failed and not np.isfinite(value):
                failed[path] = f"{path}: the model's score is not finite, so no decision can be made"
        if failed and not skip_bad_files:  # a NaN compares below every threshold: it would read as "normal"
            first = next(iter(failed.values()))
            raise AsdbenchError(first + (f" (and {len(failed) - 1} more files)" if len(failed) > 1 else ""))
        decisions = [Decision(p, t, i, float(v), self.thresholds[(t, i)])
                     for p, (t, i), v in zip(paths, machines, values) if p not in failed]
        return Scored(decisions, bad + list(failed.items()))

    @torch.no_grad()
    def score_items(self, items: Sequence[Hashable], machines: Sequence[tuple[str, str]],
                    load: Callable[[Hashable, int], np.ndarray], batch_size: int = DEFAULT_BATCH,
                    on_batch: Callable[[int], None] = lambda n: None) -> np.ndarray:
        """Scores of ``items`` (read by ``load(item, num_samples)`` as mono float32 at the model's rate, at least the
        first ``num_samples``: the clip length of the model that decides for it), in their order. Items are scored
        model by model in batches of ``batch_size``: memory holds one batch of audio, whatever the count."""
        out = np.empty(len(items), dtype=np.float64)
        for rows, model, data in self._batches(items, machines, load, batch_size):
            out[rows] = score_examples(model.network, model.scorer, data, self.device, batch_size, self.framed)[0].numpy()
            on_batch(len(rows))
        return out

    @torch.no_grad()
    def frame_scores(self, items: Sequence[Hashable], machines: Sequence[tuple[str, str]],
                     load: Callable[[Hashable, int], np.ndarray], batch_size: int = DEFAULT_BATCH) -> list[np.ndarray]:
        """Per item, the score of each of its frames (:func:`asdbench.evaluation.scoring.frame_scores`): for models
        that score frames (``train_unit=frame``); another model is one line saying so."""
        if not self.framed:
            raise AsdbenchError(f"{self.system} scores whole clips, not frames: frame scores need a frame-based system "
                                "(train_unit=frame, e.g. dcase-ae, idnn, dcase2023-ae)")
        out: list[np.ndarray] = [np.zeros(0)] * len(items)
        for rows, model, data in self._batches(items, machines, load, batch_size):
            for row, values in zip(rows, frame_scores(model.network, model.scorer, data, self.device, batch_size)):
                out[row] = values.numpy().astype(np.float64)
        return out

    def _batches(self, items: Sequence[Hashable], machines: Sequence[tuple[str, str]],
                 load: Callable[[Hashable, int], np.ndarray], batch_size: int) -> Iterator[tuple[list[int], _Model,
                                                                                               Examples]]:
        """The items model by model, a batch at a time: their rows, the model deciding for them, their examples
        (features first where the frontend has no weights, as a run computes them)."""
        rows_of: dict[str, list[int]] = {}
        for row, machine in enumerate(machines):
            rows_of.setdefault(self._owner[machine], []).append(row)
        pad = self.config["pad"]
        for slug, rows in rows_of.items():
            model = self._models[slug]
            frontend = model.network.frontend
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                waves = np.zeros(wave_shape(len(chunk), self.microphones, model.num_samples), dtype=np.float32)
                decode_into(waves, tuple(items[r] for r in chunk), lambda item: load(item, model.num_samples), pad)
                targets = target_matrix([alternatives(model.classes, machines[r]) for r in chunk])
                inputs = torch.from_numpy(waves)
                if not frontend.has_weights:  # as a run does: features first, then the model on them
                    inputs = frontend(as_float(inputs.to(self.device))).cpu()
                yield chunk, model, Examples(inputs, targets, features_ready=not frontend.has_weights)


def load_model(source: str | Path, device: str = "auto", tracking_uri: str | None = None,
               plugins: Plugins | None = None) -> TrainedModel:
    """A trained model from a run ID, ``runs:/ID``, ``models:/NAME/VERSION``, an MLflow model folder or a bundle
    folder. The weights are read into memory: nothing downloaded is kept."""
    with tempfile.TemporaryDirectory(prefix="asdbench-model-") as tmp:
        return TrainedModel(locate(str(source), Path(tmp), tracking_uri), device, plugins)
