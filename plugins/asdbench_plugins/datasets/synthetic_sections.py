"""Synthetic machine sounds in the exact layout of a DCASE 2021–2026 Task 2 release (``asdbench data synth --layout``).

Every year's path runs on a fresh machine: the tree holds the release's machine-type names and
sections (the first few of each), a development set (``dev_data/``) and an evaluation set
(``eval_data/``) with the year's test folders and evaluation-name spelling, ``attributes_SS.csv``
tables (2022+), the ground truth ``eval_data_list_<year>.csv`` (CRLF where the release has CRLF,
its rows unsorted for 2023), the 2025 supplemental clips, and for 2026 two-channel clips (the far
microphone, channel 1, hears the machine fainter and more noise), the running test index of ToyCar and
ToyCarEmu and the official evaluator's ``ground_truth_*`` files. Each machine type borrows one of the
four synthetic sound models; a section is a machine. The domain shift is real: target-domain
clips run the machine under another operating condition (another speed and harmonic balance),
named in their attribute string (``spd_A`` source, ``spd_B`` target).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asdbench.audio import write_wav
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase_sections import RELEASES, Release
from asdbench_plugins.datasets.machine_sounds import MACHINE_TYPES, SAMPLE_RATE, machine_clip
from asdbench_plugins.datasets.synthetic import write_tree

GENERATOR_VERSION = 1
LAYOUTS = tuple(r.name for r in RELEASES.values())


@dataclass(frozen=True)
class Size:
    types: int  # machine types of each set (development, evaluation)
    sections: int  # sections of each type, where the release has several
    source_train: int
    target_train: int
    test: int  # clips per domain and label, per section
    seconds: float


SIZES = {"tiny": Size(2, 1, 8, 2, 3, 1.0), "small": Size(3, 3, 40, 4, 10, 2.0)}
CRLF_YEARS = (2021, 2023, 2024, 2025)


def release_of(layout: str) -> Release:
    found = {r.name: r for r in RELEASES.values()}.get(layout)
    if found is None:
        raise AsdbenchError(f"unknown layout '{layout}'; one of: dcase2020t2, {', '.join(LAYOUTS)}")
    return found


def _units(release: Release, spec: Size) -> list[tuple[str, str, str]]:
    """(subset, type, section) of every generated machine."""
    out = []
    for subset, types, sections in (("dev_data", release.dev_types, release.dev_sections),
                                    ("eval_data", release.eval_types, release.eval_sections)):
        out += [(subset, t, s) for t in types[: spec.types] for s in sections[: spec.sections]]
    return out


def _attribute(domain: str) -> str:
    return "spd_A" if domain == "source" else "spd_B"


# 2026: the far microphone's share of the machine and the noise it adds (its own, drawn per clip).
FAR_GAIN = 0.5
FAR_NOISE = 0.05
RUNNING_INDEX_TYPES = ("ToyCar", "ToyCarEmu")  # 2026 development test names count 0000-0199 over all test clips
# 2026's clip lengths differ by type, as a share of the 10 s of the others: ToyCar and ToyCarEmu 12 s; the evaluation
# set has 6, 10 and 16 s clips (which type has which is not published: these make every length occur).
LENGTH_2026 = {"ToyCar": 1.2, "ToyCarEmu": 1.2, "ToothBrush": 0.6, "SewingMachine": 1.6}


def two_channels(near: np.ndarray, noise_seed: list[int]) -> np.ndarray:
    """``(samples, 2)``: the near signal and a far one, fainter and noisier."""
    noise = np.random.default_rng(noise_seed).normal(0.0, FAR_NOISE, near.shape).astype(np.float32)
    return np.stack([near, FAR_GAIN * near + noise], axis=1)


def generate_layout(out: Path, layout: str, size: str = "tiny", seed: int = 2021,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a tree of ``layout`` (``dcase2021t2`` ... ``dcase2025t2``) under ``out``, atomically."""
    release = release_of(layout)
    if size not in SIZES:
        raise AsdbenchError(f"unknown synthetic size '{size}'; choose one of: {', '.join(SIZES)}")
    spec = SIZES[size]
    units = _units(release, spec)
    sounds = {t: MACHINE_TYPES[i % len(MACHINE_TYPES)] for i, t in enumerate(sorted({t for _, t, _ in units}))}
    total = len(units) * (spec.source_train + spec.target_train + 4 * spec.test) + (
        4 * spec.types if release.supplemental else 0)
    done = 0

    def clip(path: Path, machine_type: str, section: str, domain: str, index: int, anomaly: bool, split_code: int):
        nonlocal done
        path.parent.mkdir(parents=True, exist_ok=True)
        machine = int(section) * 2 + (1 if domain == "target" else 0)  # the target condition: a neighbouring run
        stream = split_code * 1000 + index + (500 if domain == "target" else 0)
        seconds = spec.seconds * (LENGTH_2026.get(machine_type, 1.0) if release.two_channel else 1.0)
        wave = machine_clip(seed, sounds[machine_type], machine, stream, seconds, anomaly, 0)
        if release.two_channel:
            wave = two_channels(wave, [seed, 7, machine, stream, int(anomaly)])
        write_wav(path, wave, SAMPLE_RATE)
        done += 1
        if progress:
            progress(done, total)

    def write(tmp: Path) -> dict:
        truth: dict[str, list[tuple[str, str]]] = {}
        for subset, machine_type, section in units:
            folder = tmp / subset / machine_type
            evaluation = subset == "eval_data"
            attributes = [["file_name", "d1p", "d1v"]]
            for domain, count in (("source", spec.source_train), ("target", spec.target_train)):
                for i in range(count):
                    name = f"section_{section}_{domain}_train_normal_{i:04d}_{_attribute(domain)}.wav"
                    clip(folder / "train" / name, machine_type, section, domain, i, False, 0)
                    attributes.append([f"{machine_type}/train/{name}", "spd", _attribute(domain)[4:]])
            tests = [(domain, label, i) for domain in ("source", "target") for label in ("normal", "anomaly")
                     for i in range(spec.test)]
            random.Random(f"{seed}-{machine_type}-{section}").shuffle(tests)  # evaluation names hide the order
            for position, (domain, label, i) in enumerate(tests):
                number = position if release.two_channel and machine_type in RUNNING_INDEX_TYPES else i
                labelled = f"section_{section}_{domain}_test_{label}_{number:04d}"
                labelled += ".wav" if release.split_test else f"_{_attribute(domain)}.wav"
                test_folder = folder / (f"{domain}_test" if release.split_test else "test")
                if evaluation:
                    index = sum(1 for d, _, _ in tests[:position] if d == domain) if release.split_test else position
                    name = (f"section_{section}_{domain}_test_{index:04d}.wav" if release.split_test else
                            f"section_{section}_{'test_' if 2024 <= release.year <= 2025 else ''}{index:04d}.wav")
                    truth.setdefault(machine_type, []).append((name, labelled))
                else:
                    name = labelled
                    attributes.append([f"{machine_type}/test/{name}", "spd", _attribute(domain)[4:]])
                clip(test_folder / name, machine_type, section, domain, i, label == "anomaly", 2 if evaluation else 1)
            if release.year >= 2022:
                with open(folder / f"attributes_{section}.csv", "w", newline="") as fh:
                    fh.writelines(",".join(row) + "\n" for row in attributes)
            if release.supplemental and not evaluation and section == release.dev_sections[0]:
                for kind in ("clean", "noise"):
                    for i in range(2):
                        clip(folder / "supplemental" / f"supplemental_{kind}_{i:04d}.wav", machine_type, section,
                             "source", 900 + i, False, 3)
        _write_truth(tmp / f"eval_data_list_{release.year}.csv", truth, release, seed)
        if release.two_channel:
            _write_evaluator_truth(tmp, truth, seed)
        return {"generator_version": GENERATOR_VERSION, "layout": release.name, "size": size, "seed": seed,
                "clips": done}

    return write_tree(out, write)


def _write_evaluator_truth(root: Path, truth: dict[str, list[tuple[str, str]]], seed: int) -> None:
    """The official evaluator's ground truth (the form 2026's is published in): per type, ``ground_truth_data``
    (0 normal, 1 anomaly), ``ground_truth_domain`` (0 source, 1 target) and ``ground_truth_attributes`` (the
    labelled name without ``.wav``); rows in no particular order, no header."""
    for machine_type, rows in truth.items():
        rows = list(rows)
        random.Random(f"{seed}-{machine_type}-truth").shuffle(rows)
        values = {
            "ground_truth_data": [str(int("_anomaly_" in b)) for _, b in rows],
            "ground_truth_domain": [str(int("_target_" in b)) for _, b in rows],
            "ground_truth_attributes": [b[: -len(".wav")] for _, b in rows],
        }
        for folder, column in values.items():
            path = root / folder / f"ground_truth_{machine_type}_section_00_test.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{a},{v}\n" for (a, _), v in zip(rows, column)))


def _write_truth(path: Path, truth: dict[str, list[tuple[str, str]]], release: Release, seed: int) -> None:
    """The ground-truth list as the release ships it: CRLF in 2021 and 2023–2025, rows sorted by evaluation name
    except in 2023."""
    end = "\r\n" if release.year in CRLF_YEARS else "\n"
    lines = []
    for machine_type in release.eval_types:
        if machine_type not in truth:
            continue
        rows = sorted(truth[machine_type])
        if release.year == 2023:
            random.Random(seed).shuffle(rows)
        lines += [machine_type, *(f"{a},{b}" for a, b in rows)]
    path.write_text(end.join(lines) + end, newline="")
