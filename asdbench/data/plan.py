"""What a run will do, decided and checked before anything is decoded, trained or logged.

A run that cannot work should fail in its first second, not after hours of training: a bad
file, a model selection without labels, an ID nobody would score are found here. The plan
fixes the config (resolved for this machine), the data set (narrowed to the machines asked for), the
clips (without the bad files when ``skip_bad_files`` is set), the models, how the waveforms are
stored (int16 only where that is exact) and the data fingerprint.

It is made once, by :func:`make_plan`, where a run starts (the CLI, a sweep's task, a script), and
handed down as a required value: the runner and the tracked run decide nothing about it again.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

import torch

from asdbench.api import Augmentation, Clip, Dataset, Frontend, WindowedFrontend
from asdbench.api.augmentation import STAGES
from asdbench.audio import EXACT_INT16, SECOND_CHANNEL_RULES
from asdbench.build import build_frontend, build_model, count_parameters, instantiate
from asdbench.config import RunConfig
from asdbench.data.examples import microphones_of
from asdbench.data.fingerprint import data_fingerprint
from asdbench.data.groups import UNITS, Group, make_groups, rule_of, skipped_ids
from asdbench.data.machines import select_machines, unwrap
from asdbench.errors import AsdbenchError, reason
from asdbench.plugins import Plugins
from asdbench.runtime import resolve_runtime


@dataclass(frozen=True)
class Plan:
    config: RunConfig  # resolved for this machine (asdbench.runtime.resolve_runtime): what the run logs and uses
    dataset: Dataset  # narrowed to the config's types and ids
    rule: str  # the data set's evaluation rule (asdbench.data.groups.RULES), and so its unit: ID or section
    groups: list[Group]
    untested: list[str]  # machine IDs left without a model (no test clips), see groups.skipped_ids
    bad: list[tuple[Clip, str]]  # files skipped (skip_bad_files), with the reason
    notes: list[str]  # conversions the dataset applies, doubts about the data: one line each, the run warns once
    exact_int16: bool  # every clip is 16-bit (or less) mono PCM at the dataset's rate: an int16 store is exact
    data: str  # the data fingerprint of the clips used
    samples: dict[str, int]  # each model's clip length in samples (clip_samples)
    cache_bytes: tuple[int, int]  # at most this much in the wave and feature caches (see cache_bytes)
    augmentation: Augmentation | None = None  # the config's, built (and its source checked) before anything trains

    def with_seed(self, seed: int) -> Plan:
        """The same run with another seed (``--seeds``: the clips are checked once for all of them)."""
        return replace(self, config=self.config.replace(seed=seed))


def _check_selectable(groups: list[Group], select: str) -> None:
    """``select=oracle`` picks epochs by test-set metrics: every model needs labelled test clips."""
    if select != "oracle":
        return
    for group in groups:
        unlabelled = sum(1 for c in group.test if c.label is None)
        if unlabelled:
            raise AsdbenchError(
                f"select=oracle chooses the checkpoint on test labels, but {unlabelled} test clips of model "
                f"'{group.name}' have none (the evaluation set without --eval-labels); pass --eval-labels or use select=last")
        if not group.test:
            raise AsdbenchError(f"select=oracle chooses the checkpoint on test clips, but model '{group.name}' has none; "
                                "use select=last")


def _check_channels(clip: Clip, channels: int, rule: str) -> None:
    """A channel rule that reads a second channel (``second``, ``difference``, ``both``) on a clip of one is a data set
    read with the wrong rule: one line naming the file before anything runs, not a failure at the first model."""
    if rule in SECOND_CHANNEL_RULES and channels < 2:
        raise AsdbenchError(f"dataset.channel={rule} reads a second channel, but {clip.path} has one (DCASE 2026's clips "
                            "have two, earlier years' one): use dataset.channel=first")


def _check_batch_thresholds(config: RunConfig) -> None:
    """``threshold.scores=batches`` scores batches of training frames: it needs frames."""
    if config["threshold.scores"] == "batches" and config["train_unit"] != "frame":
        raise AsdbenchError("threshold.scores=batches scores batches of training frames as the DCASE 2023-2026 "
                            "baseline does; it needs train_unit=frame")


# What MLflow accepts in a metric name, less the "/" asdbench joins a name's parts with (auc/<type>/<unit>_<id>).
LOGGABLE = re.compile(r"^[\w.\-: ]+$")


def _check_loggable(clips: list[Clip]) -> None:
    """Machine types and IDs become parts of metric names: a folder named ``fan(1)`` would crash the run at its first
    metric, after the first model's training. Refused here, naming a file."""
    seen: set[tuple[str, str]] = set()
    for clip in clips:
        for what, name in (("machine type", clip.machine_type), ("machine ID", clip.machine_id)):
            if (what, name) not in seen and not LOGGABLE.match(name):
                raise AsdbenchError(f"{clip.path}: its {what} '{name}' cannot be part of an MLflow metric name (letters, "
                                    "digits, _ - . : and spaces only); rename the folder or file")
            seen.add((what, name))


def _conversions(formats: Counter, sample_rate: int) -> list[str]:
    """One line per kind of conversion the files need, with how many files and which formats."""
    def count(predicate) -> tuple[int, list]:
        found = [(f, n) for f, n in formats.items() if predicate(f)]
        return sum(n for _, n in found), sorted({f for f, _ in found})

    notes = []
    n, found = count(lambda f: f[0] != sample_rate)
    if n:
        notes.append(f"{n} files at {', '.join(str(f[0]) for f in found)} Hz are resampled to {sample_rate} Hz")
    n, found = count(lambda f: f[1] > 1)
    if n:
        notes.append(f"{n} files have {', '.join(str(f[1]) for f in found)} channels: read as the dataset declares "
                     "(dataset.channel)")
    n, found = count(lambda f: f[2] not in EXACT_INT16)
    if n:
        notes.append(f"{n} files are {', '.join(sorted({f[2] for f in found}))}: kept at full precision (float32)")
    return notes


def _check_frontend(plugins: Plugins, config: RunConfig, dataset: Dataset,
                    num_samples: int) -> tuple[tuple[int, ...], int, Frontend]:
    """Build the frontend and pass it one silent clip of ``num_samples``: parameters it cannot work with
    (``n_mels=0``, a window longer than the clip) fail here in one line, not in the first model's training (once
    blamed on the disk). Returns the clip's feature shape, the floats the feature cache keeps per clip (0 for a
    frontend with weights: its features are not cached) and the frontend."""
    frontend = build_frontend(plugins, config, dataset.sample_rate, num_samples, microphones_of(dataset))
    name, params = config.component("frontend"), ", ".join(f"{k}={v}" for k, v in config.params("frontend").items())
    try:
        shape = frontend.output_shape(num_samples)
        cached = frontend.base_shape(num_samples) if isinstance(frontend, WindowedFrontend) else shape
    except Exception as exc:  # noqa: BLE001 - torch raises many types for impossible sizes
        raise AsdbenchError(f"frontend '{name}' ({params}) cannot process a clip of {num_samples} samples: "
                            f"{reason(exc)}") from None
    if 0 in shape:
        raise AsdbenchError(f"frontend '{name}' ({params}) gives empty features of shape {shape} for a clip of "
                            f"{num_samples} samples: check its parameters")
    return shape, 0 if frontend.has_weights else math.prod(cached), frontend


def _check_epochs(plugins: Plugins, config: RunConfig, frontend: Frontend, feature_shape: tuple[int, ...]) -> None:
    """``epochs=0`` is the run of a model with nothing to train (a frozen encoder read by a fitted scorer), and only
    that: either way round, one line before anything is trained or logged."""
    example = feature_shape[1:] if config["train_unit"] == "frame" else feature_shape
    with torch.random.fork_rng():
        model, _ = build_model(plugins, config, frontend, example, num_classes=2)
    trainable = count_parameters(model)
    if config["epochs"] == 0 and trainable:
        raise AsdbenchError(f"epochs=0 trains nothing, but this model has {trainable:,} weights to train (frontend "
                            f"'{config.component('frontend')}', backbone '{config.component('backbone')}', loss "
                            f"'{config.component('loss')}'): set epochs to 1 or more")
    if config["epochs"] > 0 and not trainable:
        raise AsdbenchError(f"this model has no weights to train (frontend '{config.component('frontend')}' frozen or "
                            f"weightless, backbone '{config.component('backbone')}' and loss "
                            f"'{config.component('loss')}' without weights): set epochs=0, its scorer fits the "
                            "training clips' outputs as they are")


def _augmentation(plugins: Plugins, config: RunConfig, dataset: Dataset,
                  feature_shape: tuple[int, ...]) -> Augmentation | None:
    """The configured augmentation (``None``: none). One of a stage asdbench does not know, or a feature
    augmentation that cannot take this frontend's training examples (``feature_shape``, or its frames with
    ``train_unit=frame``), is one line before anything trains."""
    augmentation = instantiate(plugins, config, "augmentation", dataset=dataset)
    if augmentation is None:
        return None
    name = config.component("augmentation")
    if getattr(augmentation, "stage", None) not in STAGES:
        raise AsdbenchError(f"augmentation '{name}' has stage={getattr(augmentation, 'stage', None)!r}; an "
                            f"augmentation's stage is one of: {', '.join(STAGES)}")
    example = feature_shape[1:] if config["train_unit"] == "frame" else feature_shape
    if augmentation.stage == "mix":
        if config["mixup"] != "none":
            raise AsdbenchError(f"augmentation '{name}' draws each training batch's mix itself; it cannot train with "
                                f"mixup={config['mixup']} as well: --set mixup=none")
        exchange = augmentation.draw(torch.zeros(2, dtype=torch.long), 1, torch.Generator().manual_seed(0)).exchange
        if exchange is not None and (len(example) < 2 or example[0] <= exchange):
            raise AsdbenchError(f"augmentation '{name}' exchanges the channels from {exchange} on; this frontend's "
                                f"training examples of shape {example} have {example[0] if len(example) > 1 else 1} "
                                "(a frontend of stacked branches: stgram, tfgram, tastgram)")
    if augmentation.stage == "features":
        try:
            augmentation(torch.zeros(2, *example), torch.Generator().manual_seed(0))
        except AsdbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's own error: named, not a traceback
            raise AsdbenchError(f"augmentation '{name}' cannot take training examples of shape {example}: "
                                f"{reason(exc)}") from None
    return augmentation


def cache_bytes(groups: list[Group], samples: dict[str, int], exact_int16: bool, feature_floats: int,
                base_samples: int, mics: int = 1) -> tuple[int, int]:
    """What a run's entries in the wave and feature caches take at most (entries made before are reused): one per
    model's training and test clip lists (features scale with each model's clip length)."""
    waves = features = 0
    for g in groups:
        clips = len(g.train) + len(g.test)
        waves += clips * mics * samples[g.name] * (2 if exact_int16 else 4)
        features += clips * round(feature_floats * samples[g.name] / base_samples) * 4
    return waves, features


def clip_samples(config: RunConfig, dataset: Dataset, groups: list[Group]) -> dict[str, int]:
    """Each model's clip length in samples: ``clip_seconds`` where set, else its machine types' own (the longest,
    where a model's types differ; datasets that can tell, ``clip_seconds_of``), else the data set's."""
    of = getattr(dataset, "clip_seconds_of", None)
    out = {}
    for g in groups:
        seconds = config["clip_seconds"] or (max(of(t) for t in {c.machine_type for c in g.train})
                                             if of is not None and g.train else dataset.clip_seconds)
        out[g.name] = int(round(seconds * dataset.sample_rate))
    return out


def _duplicate_names(clips: list[Clip]) -> list[str]:
    """A note where one file name (of one machine type and split) is found in more than one folder: the same
    recording counted twice (a development and an additional set unpacked over each other), or, among test clips, two
    rows of one name in the official result files, which name clips by file name alone."""
    folders: dict[tuple[str, str, str], list[Clip]] = {}
    for clip in clips:
        folders.setdefault((clip.machine_type, clip.split, clip.path.name), []).append(clip)
    repeated = [found for found in folders.values() if len(found) > 1]
    if not repeated:
        return []
    first = repeated[0]
    return [f"{len(repeated)} file names occur in more than one folder of the data set, e.g. {first[0].path.name} "
            f"({first[0].machine_type}, {first[0].split}) in {first[0].path.parent} and {first[1].path.parent}: the "
            "same recording counted twice? Result files name clips by file name"]


def load_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    """The configured data set, narrowed to the ``types`` and ``ids`` the config names."""
    return select_machines(instantiate(plugins, config, "dataset"), config.values)


def clip_summary(train: list[Clip], test: list[Clip]) -> dict[tuple[str, str], dict[str, int]]:
    """Counts per (type, ID): train, test normal, test anomaly, test unlabelled."""
    counts: Counter = Counter()
    for c in train:
        counts[(c.machine_type, c.machine_id, "train")] += 1
    for c in test:
        kind = {0: "test_normal", 1: "test_anomaly", None: "test_unlabelled"}[c.label]
        counts[(c.machine_type, c.machine_id, kind)] += 1
    out: dict[tuple[str, str], dict[str, int]] = {}
    for (mtype, mid, kind), n in counts.items():
        row = out.setdefault((mtype, mid), {"train": 0, "test_normal": 0, "test_anomaly": 0, "test_unlabelled": 0})
        row[kind] = n
    return dict(sorted(out.items()))


def make_plan(plugins: Plugins, config: RunConfig, dataset: Dataset | None = None) -> Plan:
    """Resolve the config for this machine, build the configured data set (or take ``dataset``, already built and
    narrowed: a wrapped one, or one whose summary was shown), check every clip's header (datasets with a ``check``
    method), then group the clips into models."""
    config = resolve_runtime(config)
    dataset = dataset if dataset is not None else load_dataset(plugins, config)
    base_samples = int(round((config["clip_seconds"] or dataset.clip_seconds) * dataset.sample_rate))
    feature_shape, feature_floats, frontend = _check_frontend(plugins, config, dataset, base_samples)
    train, test = dataset.clips("train"), dataset.clips("test")
    check = getattr(dataset, "check", None)
    channel_rule = getattr(unwrap(dataset), "channel", "first")
    bad: list[tuple[Clip, str]] = []
    formats: Counter = Counter()
    if check is not None:
        for clip in [*train, *test]:
            try:
                f = check(clip)
            except AsdbenchError as exc:
                bad.append((clip, str(exc)))
            else:
                formats[(f.sample_rate, f.channels, f.subtype)] += 1
                _check_channels(clip, f.channels, channel_rule)
    if bad and not config["skip_bad_files"]:
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise AsdbenchError(f"{bad[0][1]}{more}; nothing was trained. Replace the file, or pass --skip-bad-files to "
                            "leave such files out (counted, and listed in the run's bad_files.csv)")
    if bad:
        dropped = {c for c, _ in bad}
        train = [c for c in train if c not in dropped]
        test = [c for c in test if c not in dropped]
    _check_loggable([*train, *test])
    rule = rule_of(dataset)
    unit = UNITS[rule]
    groups = make_groups(train, test, config["model_per"], unit, getattr(dataset, "classes", "unit"))
    _check_selectable(groups, config["select"])
    _check_batch_thresholds(config)
    exact = check is not None and all(rate == dataset.sample_rate and channels == 1 and subtype in EXACT_INT16
                                      for rate, channels, subtype in formats)
    samples = clip_samples(config, dataset, groups)
    augmentation = _augmentation(plugins, config, dataset, feature_shape)
    _check_epochs(plugins, config, frontend, feature_shape)
    return Plan(config, dataset, rule, groups, skipped_ids(train, test, config["model_per"], unit), bad,
                _conversions(formats, dataset.sample_rate) + _duplicate_names([*train, *test]), exact,
                data_fingerprint(dataset.name, train, test), samples,
                cache_bytes(groups, samples, exact, feature_floats, base_samples, microphones_of(dataset))
                if config["cache"] else (0, 0),
                augmentation)
