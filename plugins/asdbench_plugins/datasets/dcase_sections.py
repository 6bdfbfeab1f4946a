"""``dcase2021t2`` ... ``dcase2026t2``: the DCASE 2021–2026 Task 2 data sets, one layout, a table per year.

The releases differ in data, not in code paths: which machine types and sections the development
and evaluation sets hold, whether the 2021 test clips sit in ``source_test``/``target_test``
folders, the first-shot rule of 2023–2025 (dev and eval machine types disjoint, one section per
type), the 2025 supplemental clips and the two channels of 2026 (near microphone = channel 0, the signal of
earlier years; far = channel 1). Everything else is one parser:

- training clips ``<T>/train/section_SS_{source|target}_train_normal_NNNN[_<attributes>].wav``,
- development test clips ``section_SS_{source|target}_test_{normal|anomaly}_NNNN[_<attributes>].wav``
  (2021: in ``<T>/source_test`` and ``<T>/target_test``; 2022–2025: in ``<T>/test``),
- evaluation test clips with the label hidden: ``section_SS_{source|target}_test_NNNN.wav`` (2021),
  ``section_SS_NNNN.wav`` or ``section_SS_test_NNNN.wav`` (2022–2025: the domain hidden too; both
  spellings occur),

each read with an anchored regular expression (attribute strings hold underscores of their own;
splitting on ``_`` would misread them). ``<T>/attributes_SS.csv`` fills in the attributes of clips
whose names carry none. The evaluation ground truth is the release's ``eval_data_list_<year>.csv``
(a machine-type line, then ``<evaluation name>,<labelled name>`` rows: CRLF line ends in most years,
unsorted in 2023), whose labelled names give each clip its label, domain and attributes, or the official
evaluator's three ``ground_truth_*`` files per type (2024 on; the form 2026's ground truth is published in).

``root`` holds ``dev_data/`` and ``eval_data/`` (optionally each with ``raw/``, as the 2023 baseline
unpacks them), or the ``<T>/`` folders directly. A section plays the role a machine ID plays in 2020:
``Clip.machine_id`` is the section.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from asdbench import hookimpl
from asdbench.api import Clip
from asdbench.audio import wav_format
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020_layout import LABELLED as LABELLED_2020
from asdbench_plugins.datasets.dcase2020_layout import LayoutDataset

TRAIN = re.compile(r"^section_(\d{2})_(source|target)_train_normal_(\d{4})(?:_(.*))?\.wav$")
TEST = re.compile(r"^section_(\d{2})_(source|target)_test_(normal|anomaly)_(\d{4})(?:_(.*))?\.wav$")
EVAL_2021 = re.compile(r"^section_(\d{2})_(source|target)_test_(\d{4})\.wav$")
EVAL = re.compile(r"^section_(\d{2})_(?:test_)?(\d{4})\.wav$")
SUBSETS = ("dev_data", "eval_data")
PROTOCOLS = ("dev", "eval")
NO_ATTRIBUTE = "noAttribute"


@dataclass(frozen=True)
class Release:
    """What one year's release holds: its machine types and sections, and the layout switches."""

    year: int
    dev_types: tuple[str, ...]
    eval_types: tuple[str, ...]
    dev_sections: tuple[str, ...]
    eval_sections: tuple[str, ...]
    zenodo: str  # development, additional training, evaluation records
    split_test: bool = False  # 2021: <T>/source_test and <T>/target_test
    first_shot: bool = False  # 2023+: dev and eval types disjoint, one section per type
    supplemental: bool = False  # 2025: <T>/supplemental clean-machine and noise clips
    two_channel: bool = False  # 2026: every clip near (channel 0) and far (channel 1) microphone

    @property
    def name(self) -> str:
        return f"dcase{self.year}t2"

    @property
    def evaluation(self) -> str:
        return "dcase2021" if self.year == 2021 else "dcase2022"

    @property
    def types(self) -> set[str]:
        return set(self.dev_types) | set(self.eval_types)

    def sections(self, machine_type: str) -> set[str]:
        return (set(self.dev_sections) if machine_type in self.dev_types else set()) | (
            set(self.eval_sections) if machine_type in self.eval_types else set())

    def fits(self, found: Found) -> bool:
        """Whether a tree can be this release: its folders, machine types and sections."""
        return (not found.names_2020 and bool(found.types) and found.split_test_folders == self.split_test
                and all(section in self.sections(t) for t, section in found.units)
                and found.types <= self.types and (self.supplemental or not found.supplemental)
                and (found.channels is None or (found.channels == 2) == self.two_channel))

    def is_eval(self, machine_type: str, section: str) -> bool:
        """Whether a unit belongs to the evaluation set (its test clips are the evaluation test clips)."""
        return machine_type in self.eval_types and section in self.eval_sections and not (
            machine_type in self.dev_types and section in self.dev_sections)


_2021_TYPES = ("fan", "gearbox", "pump", "slider", "valve", "ToyCar", "ToyTrain")
_2022_TYPES = ("bearing", "fan", "gearbox", "slider", "valve", "ToyCar", "ToyTrain")
RELEASES = {r.year: r for r in (
    Release(2021, _2021_TYPES, _2021_TYPES, ("00", "01", "02"), ("03", "04", "05"), "4562016, 4660992, 4884786",
            split_test=True),
    Release(2022, _2022_TYPES, _2022_TYPES, ("00", "01", "02"), ("03", "04", "05"), "6355122, 6462969, 6586456"),
    Release(2023, _2022_TYPES, ("bandsaw", "grinder", "shaker", "ToyDrone", "ToyNscale", "ToyTank", "Vacuum"),
            ("00",), ("00",), "7882613, 7830345, 7860847", first_shot=True),
    Release(2024, _2022_TYPES, ("3DPrinter", "AirCompressor", "Scanner", "ToyCircuit", "HoveringDrone", "HairDryer",
                                "ToothBrush", "RoboticArm", "BrushlessMotor"),
            ("00",), ("00",), "10902294, 11259435, 11363076", first_shot=True),
    Release(2025, _2022_TYPES, ("AutoTrash", "BandSealer", "CoffeeGrinder", "HomeCamera", "Polisher", "ScrewFeeder",
                                "ToyPet", "ToyRCCar"),
            ("00",), ("00",), "15097779, 15392814, 15519362", first_shot=True, supplemental=True),
    # Type names alone cannot tell 2026 (ToyDrone and ToothBrush were evaluation types of 2023 and 2024, ToyCar and
    # fan development types before): its two channels and the Emu types can.
    Release(2026, ("ToyCar", "ToyCarEmu", "bearingEmu", "fan", "gearboxEmu", "sliderEmu", "valveEmu"),
            ("ToyDrone", "ToothBrush", "SewingMachine", "BlowerDustCollector", "Sander"),
            ("00",), ("00",), "19336329, 20151556, 20437238", first_shot=True, two_channel=True),
)}


def _root_env(release: Release) -> str:
    return f"ASDBENCH_DCASE{release.year}T2_ROOT"


def download_help(release: Release) -> str:
    return (f"{release.name} needs the data set: pass --root DIR (or set {_root_env(release)}). Download the DCASE "
            f"{release.year} Task 2 zips (Zenodo records {release.zenodo}: development, additional training and "
            f"evaluation sets: `asdbench data download {release.name} --part dev --out DIR`) and unzip them into "
            f"DIR/dev_data and DIR/eval_data; for evaluation metrics also "
            f"eval_data_list_{release.year}.csv (--eval-labels). Without a download: `asdbench data synth --layout "
            f"{release.name} --out DIR`")


@dataclass
class Found:
    """What a walk of a tree found: clips per split, supplemental clips, attribute tables, misfits, and the
    layout signs that tell the year of a tree."""

    train: list[Clip] = field(default_factory=list)
    test: list[Clip] = field(default_factory=list)
    supplemental: list[Clip] = field(default_factory=list)
    misfits: list[Path] = field(default_factory=list)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # attributes_SS.csv: (type, file) -> string
    types: set[str] = field(default_factory=set)
    units: set[tuple[str, str]] = field(default_factory=set)  # (type, section) of every clip
    split_test_folders: bool = False
    names_2020: bool = False
    channels: int | None = None  # of the first clip found (its header): 2026's clips have two


def _attributes(cells: list[str]) -> str:
    return "_".join(c.strip() for c in cells if c.strip())


def read_attribute_table(path: Path) -> dict[str, str]:
    """``attributes_SS.csv``: a header, then ``<T>/<split>/<file>.wav,<key>,<value>[,<key>,<value>...]``."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return {Path(row[0].strip()).name: _attributes(row[1:]) for row in rows[1:] if row and row[0].strip()}


def _clip(path: Path, machine_type: str, folder: str) -> Clip | None:
    """The clip a file of ``<T>/<folder>/`` names, or ``None`` if the name does not fit that folder."""
    name = path.name
    if folder == "train":
        m = TRAIN.match(name)
        return Clip(path, machine_type, m.group(1), "train", 0, m.group(2), m.group(4) or "") if m else None
    split_by_domain = folder in ("source_test", "target_test")
    if folder != "test" and not split_by_domain:
        return None
    m = TEST.match(name)
    if m and (not split_by_domain or folder == f"{m.group(2)}_test"):
        return Clip(path, machine_type, m.group(1), "test", int(m.group(3) == "anomaly"), m.group(2), m.group(5) or "")
    if split_by_domain:
        m = EVAL_2021.match(name)
        return Clip(path, machine_type, m.group(1), "test", None, m.group(2)) if m and folder == f"{m.group(2)}_test" else None
    m = EVAL.match(name)
    return Clip(path, machine_type, m.group(1), "test", None) if m else None


def scan(root: Path) -> Found:
    found = Found()
    subsets = [root / s for s in SUBSETS if (root / s).is_dir()] or [root]
    subsets = [s / "raw" if (s / "raw").is_dir() else s for s in subsets]
    for subset in subsets:
        for type_dir in sorted(p for p in subset.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found.types.add(type_dir.name)
            for item in sorted(type_dir.iterdir()):
                if item.name.startswith("."):
                    continue
                if item.is_file():
                    if re.fullmatch(r"attributes_\d{2}\.csv", item.name):
                        for name, attributes in read_attribute_table(item).items():
                            found.attributes[(type_dir.name, name)] = attributes
                    else:
                        found.misfits.append(item)
                    continue
                found.split_test_folders |= item.name in ("source_test", "target_test")
                for path in sorted(item.iterdir()):
                    if path.name.startswith("."):
                        continue
                    if item.name == "supplemental" and path.suffix.lower() == ".wav":
                        found.supplemental.append(Clip(path, type_dir.name, "", "supplemental", 0))
                        continue
                    clip = _clip(path, type_dir.name, item.name) if path.suffix.lower() == ".wav" else None
                    if clip is None:
                        found.names_2020 |= bool(LABELLED_2020.match(path.name))
                        found.misfits.append(path)
                    else:
                        (found.train if clip.split == "train" else found.test).append(clip)
                        found.units.add((clip.machine_type, clip.machine_id))
                        if found.channels is None:
                            found.channels = _channels(path)
    return found


def _channels(path: Path) -> int | None:
    try:
        return wav_format(path, scan=False).channels
    except AsdbenchError:  # a bad first file is reported when the data set checks its clips
        return None


def layout_years(found: Found) -> list[str]:
    """The data set plugins whose layout the tree fits, judged by its names, folders and machine types."""
    if found.names_2020:
        return ["dcase2020t2"]
    return [r.name for r in RELEASES.values() if r.fits(found)]


@functools.lru_cache(maxsize=4)
def _layouts(root: Path, modified_ns: int) -> tuple[str, ...]:
    return tuple(layout_years(scan(root)))


def layouts_under(root: Path) -> list[str]:
    """:func:`layout_years` of the tree at ``root``, scanned once for all the data sets asked in a row whether
    they recognise it (keyed by the folder and its modification time); none for a path that is not a folder."""
    root = Path(root).expanduser().resolve()
    return list(_layouts(root, root.stat().st_mtime_ns)) if root.is_dir() else []


def read_eval_list(path: Path, release: Release) -> dict[tuple[str, str], Clip]:
    """``eval_data_list_<year>.csv``, or a folder holding it or the official evaluator's ``ground_truth_*`` folders
    (:func:`read_evaluator_truth`): ``(type, key of the evaluation name)`` -> the labelled clip it was, read from
    its labelled name (label, domain, attributes)."""
    if path.is_dir():
        candidates = [path / f"eval_data_list_{release.year}.csv", path / "eval_data_list.csv"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None and (path / EVALUATOR_TRUTH[0]).is_dir():
            return read_evaluator_truth(path, release)
        path = found or candidates[0]
    if not path.is_file():
        raise AsdbenchError(f"evaluation ground truth not found: {path} (eval_data_list_{release.year}.csv, or the "
                            "evaluator's ground_truth_data/ folders)")
    labels: dict[tuple[str, str], Clip] = {}
    machine_type = None
    with open(path, newline="") as fh:  # newline="": CRLF and LF lists read alike
        for lineno, row in enumerate(csv.reader(fh), start=1):
            row = [cell.strip() for cell in row]
            if not any(row):
                continue
            if len(row) == 1:
                machine_type = row[0]
                continue
            truth = TEST.match(row[1]) if len(row) >= 2 and machine_type else None
            key = _eval_key(row[0]) if truth else None
            if key is None:
                raise AsdbenchError(f"{path}:{lineno}: expected a machine type, or '<evaluation file>,<labelled file>' "
                                    f"in the DCASE {release.year} names, got {','.join(row)}")
            labels[(machine_type, key)] = Clip(Path(row[1]), machine_type, truth.group(1), "test",
                                                int(truth.group(3) == "anomaly"), truth.group(2), truth.group(5) or "")
    return labels


# The official evaluator's ground truth (2024 on): three folders, one file per type and section in each, rows
# ``<evaluation name>,<value>`` without a header, in no particular order.
EVALUATOR_TRUTH = ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes")
TRUTH_FILE = re.compile(r"^ground_truth_(.+)_section_(\d{2})_test\.csv$")


def _truth_rows(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = [[cell.strip() for cell in row] for row in csv.reader(fh)]
    bad = next((i for i, row in enumerate(rows, start=1) if any(row) and len(row) != 2), None)
    if bad is not None:
        raise AsdbenchError(f"{path}:{bad}: expected '<evaluation file>,<value>'")
    return {row[0]: row[1] for row in rows if any(row)}


def read_evaluator_truth(folder: Path, release: Release) -> dict[tuple[str, str], Clip]:
    """The evaluator's ``ground_truth_data`` (label: 0 normal, 1 anomaly), ``ground_truth_domain`` (0 source,
    1 target) and ``ground_truth_attributes`` (the labelled name, without ``.wav``) files of every type, paired by
    evaluation name, never by position; the same mapping as :func:`read_eval_list`."""
    labels: dict[tuple[str, str], Clip] = {}
    for path in sorted((folder / EVALUATOR_TRUTH[0]).glob("ground_truth_*_section_*_test.csv")):
        machine_type, section = TRUTH_FILE.match(path.name).groups()
        domains = _truth_rows(folder / EVALUATOR_TRUTH[1] / path.name)
        named = _truth_rows(folder / EVALUATOR_TRUTH[2] / path.name)
        for name, label in _truth_rows(path).items():
            key = _eval_key(name)
            labelled = TEST.match(f"{named[name]}.wav") if name in named else None
            if key is None or label not in ("0", "1") or domains.get(name, "0") not in ("0", "1") or (
                    name in named and labelled is None):
                raise AsdbenchError(f"{path}: the row of {name} does not hold a DCASE {release.year} evaluation name "
                                    "and a label 0 or 1 (or its domain or labelled name is not the year's)")
            domain = {"0": "source", "1": "target"}.get(domains.get(name, ""))
            labels[(machine_type, key)] = Clip(Path(f"{named[name]}.wav" if name in named else name), machine_type,
                                                section, "test", int(label), domain,
                                                (labelled.group(5) or "") if labelled else "")
    if not labels:
        raise AsdbenchError(f"{folder / EVALUATOR_TRUTH[0]} holds no ground_truth_<type>_section_SS_test.csv")
    return labels


def _eval_key(name: str) -> str | None:
    """One key for both spellings of an evaluation name: ``section_SS[_domain]_NNNN``."""
    m = EVAL_2021.match(name)
    if m:
        return f"{m.group(1)}_{m.group(2)}_{m.group(3)}"
    m = EVAL.match(name)
    return f"{m.group(1)}_{m.group(2)}" if m else None


class SectionsDataset(LayoutDataset):
    """A DCASE 2021–2026 Task 2 release (``Release``), from the official zips' layout."""

    def __init__(self, release: Release, root: str = "", protocol: str = "dev", eval_labels: str = "",
                 strict: bool = True, channel: str = "first", classes: str = "section") -> None:
        if classes not in ("section", "attribute"):
            raise AsdbenchError(f"dataset.classes={classes!r} is not one of: section, attribute")
        self.classes = "unit" if classes == "section" else classes  # what a classifier learns: see groups.class_of
        self.release = release
        self.name = release.name
        self.evaluation = release.evaluation
        root = root or os.environ.get(_root_env(release), "")
        if not root:
            raise AsdbenchError(download_help(release))
        if protocol not in PROTOCOLS:
            raise AsdbenchError(f"dataset.protocol={protocol!r} is not one of: {', '.join(PROTOCOLS)}")
        path = Path(root).expanduser()
        if not path.is_dir():
            raise AsdbenchError(f"dataset folder {path} does not exist or is not a folder. " + download_help(release))
        found = scan(path)
        self._check_layout(found, path)
        self.misfits = found.misfits
        if found.misfits and strict:
            more = f" (and {len(found.misfits) - 1} more; `asdbench data check` lists them)" if len(found.misfits) > 1 else ""
            raise AsdbenchError(f"{found.misfits[0]} does not follow the DCASE {release.year} Task 2 layout{more}")
        train = [self._with_attributes(c, found.attributes) for c in found.train]
        test = [self._with_attributes(c, found.attributes) for c in found.test]
        if eval_labels:
            labels = read_eval_list(Path(eval_labels).expanduser(), release)
            test = [self._labelled(c, labels) if c.label is None else c for c in test]
        self.protocol = protocol
        if protocol == "dev":
            test = [c for c in test if not release.is_eval(c.machine_type, c.machine_id)]
            train = [c for c in train if not release.is_eval(c.machine_type, c.machine_id)]
        else:
            test = [c for c in test if release.is_eval(c.machine_type, c.machine_id)]
            tested = {c.machine_type for c in test}
            train = [c for c in train if c.machine_type in tested]
        if not train:
            raise AsdbenchError(f"no training clips (<T>/train/section_SS_source_train_normal_NNNN_*.wav) for the "
                                f"{protocol} protocol under {path}")
        if not test:
            raise AsdbenchError(f"no {protocol} test clips of DCASE {release.year} Task 2 under {path} "
                                f"(protocol {protocol}: {'the development' if protocol == 'dev' else 'the evaluation'} "
                                "set's test folders)")
        self.supplemental = found.supplemental  # 2025: clean machine and noise clips, clips("supplemental"), never scored
        # The releases' clips are 10 s (2025: up to 12 s); a tree's own length is read from its first training clip.
        first = wav_format(train[0].path)
        super().__init__(path, {"train": train, "test": test, "supplemental": found.supplemental},
                         round(first.frames / first.sample_rate, 2), channel)

    def clip_seconds_of(self, machine_type: str) -> float:
        """The clip length of a machine type, read from its first training clip's header: the types of one release
        differ (DCASE 2026: ToyCar 12 s, fan 10 s, evaluation types 6 to 16 s), and each model is trained and scored
        on its own type's whole clips, as the official baselines read them. (DCASE 2020 keeps one length, 10 s:
        STgram-MFN's authors cut ToyCar's 11 s clips to it.)"""
        first = next((c for c in self._clips["train"] if c.machine_type == machine_type), None)
        if first is None:
            return self.clip_seconds
        found = wav_format(first.path, scan=False)
        return round(found.frames / found.sample_rate, 2)

    @staticmethod
    def _with_attributes(clip: Clip, table: dict[tuple[str, str], str]) -> Clip:
        attributes = table.get((clip.machine_type, clip.name), "")
        if clip.attributes or not attributes:
            return clip
        return Clip(clip.path, clip.machine_type, clip.machine_id, clip.split, clip.label, clip.domain, attributes)

    def _check_layout(self, found: Found, path: Path) -> None:
        release = self.release
        fits = layout_years(found)
        if release.name in fits:
            return
        if not found.types:
            raise AsdbenchError(f"no machine-type folders under {path}. " + download_help(release))
        hint = f": use --dataset {' or '.join(fits)}" if fits else ""
        unknown = sorted(found.types - release.types)
        wrong_sections = sorted(f"{t}/section_{s}" for t, s in found.units if t in release.types
                                and s not in release.sections(t))
        if found.names_2020:
            what = "its file names are DCASE 2020's"
        elif unknown:
            what = f"machine types {', '.join(unknown)} are not DCASE {release.year}'s"
        elif wrong_sections:
            what = (f"{', '.join(wrong_sections)} are not sections of DCASE {release.year}"
                    + ("; 2023–2025 are first-shot: one section per machine type" if release.first_shot else ""))
        else:
            what = ("2021 keeps test clips in source_test/ and target_test/" if release.split_test or
                    found.split_test_folders else "its folders are not this year's")
        layout = f"the layout of {', '.join(fits)}" if fits else "no DCASE Task 2 layout asdbench knows"
        raise AsdbenchError(f"{path} does not hold the DCASE {release.year} Task 2 layout ({what}); it matches "
                            f"{layout}{hint}")

    def _labelled(self, clip: Clip, labels: dict[tuple[str, str], Clip]) -> Clip:
        truth = labels.get((clip.machine_type, _eval_key(clip.name) or ""))
        if truth is None or truth.machine_id != clip.machine_id:
            raise AsdbenchError(f"{clip.path} is not in the evaluation ground truth (eval_data_list_{self.release.year}.csv "
                                "or the evaluator's ground_truth_* files)")
        return Clip(clip.path, clip.machine_type, clip.machine_id, "test", truth.label, truth.domain, truth.attributes)

    def describe(self) -> str:
        types = sorted({c.machine_type for c in self._clips["test"]})
        units = {(c.machine_type, c.machine_id) for c in self._clips["test"]}
        extra = f", {len(self.supplemental)} supplemental" if self.supplemental else ""
        return (f"{self.name} at {self.root}, protocol {self.protocol}: {len(self._clips['train'])} train, "
                f"{len(self._clips['test'])} test clips{extra}; {len(types)} types, {len(units)} sections")


def _factory(release: Release):
    def make(root: str = "", protocol: str = "dev", eval_labels: str = "", strict: bool = True,
             channel: str = "first", classes: str = "section") -> SectionsDataset:
        return SectionsDataset(release, root, protocol, eval_labels, strict, channel, classes)

    make.recognises = lambda root: release.name in layouts_under(root)
    make.zenodo = dict(zip(("dev", "additional", "eval"), release.zenodo.split(", ")))  # `asdbench data download`
    make.__doc__ = (f"DCASE {release.year} Challenge Task 2 ({', '.join(release.dev_types[:3])}...; sections, "
                    "source/target domains), from the official zips (needs --root)")
    return make


@hookimpl
def register_datasets(register):
    for release in RELEASES.values():
        register(release.name, _factory(release))
