"""``dcase2020t2``: the DCASE 2020 Challenge Task 2 data set, read from the official zips' layout.

``root`` is the folder the zips were unpacked into: ``dev_data/<Type>/`` (development
set), ``eval_data/<Type>/train`` (additional training set) and ``eval_data/<Type>/test``
(evaluation set, no labels in its names), as the DCASE 2020 baseline expects; a root
that holds the ``<Type>/`` folders directly (everything unpacked into one place) works
too. Machine types and IDs are read from the files, so a partial tree works.

Protocols: ``paper`` (the STgram-MFN paper's: train on the development and additional
training sets, test on the development test set), ``dev`` (the DCASE baseline's
development protocol: train on the IDs of the development test set only) and ``eval``
(train on both, score the evaluation test set; metrics only with ``eval_labels``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from asdbench import hookimpl
from asdbench.api import Clip
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020_layout import LayoutDataset, Scan, misfit_error, scan_tree
from asdbench_plugins.datasets.dcase_sections import layout_years, layouts_under
from asdbench_plugins.datasets.dcase_sections import scan as scan_sections
from asdbench_plugins.datasets.synthetic import is_synthetic_tree

ROOT_ENV = "ASDBENCH_DCASE2020T2_ROOT"
PROTOCOLS = ("paper", "dev", "eval")
SUBSETS = ("dev_data", "eval_data")

DOWNLOAD_HELP = (
    f"dcase2020t2 needs the data set: pass --root DIR (or set {ROOT_ENV}, or dataset.root in a --config file). "
    "Download from Zenodo the development set dev_data_<Type>.zip (record 3678171), the additional training set "
    "eval_data_train_<Type>.zip (record 3727685), the evaluation set eval_data_test_<Type>.zip (record 3841772) and, "
    "for evaluation metrics, its ground truth eval_data_list.csv (record 3951620); unzip the dev_data_* zips inside "
    "DIR/dev_data and the eval_data_* zips inside DIR/eval_data (`asdbench data download dcase2020t2 --part "
    "dev,additional,eval,labels --out DIR` does all this). To try asdbench without a download: --dataset synthetic"
)


@dataclass(frozen=True)
class Part:
    """One official subset found under the root, for the run log and ``asdbench data check``."""

    name: str
    clips: tuple[Clip, ...]

    def summary(self) -> str:
        types = sorted({c.machine_type for c in self.clips})
        ids = {(c.machine_type, c.machine_id) for c in self.clips}
        return f"{self.name}: {len(self.clips)} clips, {len(types)} types ({', '.join(types)}), {len(ids)} machine IDs"


def read_eval_labels(path: Path) -> dict[tuple[str, str], int]:
    """``eval_data_list.csv``: a one-field line names a machine type; then ``<eval name>,<original name>,<0|1>``."""
    if path.is_dir():
        path = path / "eval_data_list.csv"
    if not path.is_file():
        raise AsdbenchError(f"evaluation ground truth not found: {path} (eval_data_list.csv, Zenodo record 3951620)")
    labels: dict[tuple[str, str], int] = {}
    machine_type = None
    with open(path, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            row = [cell.strip() for cell in row]
            if not row or not any(row):
                continue
            if len(row) == 1:
                machine_type = row[0]
            elif len(row) >= 3 and machine_type and row[2] in ("0", "1"):
                labels[(machine_type, row[0])] = int(row[2])
            else:
                raise AsdbenchError(f"{path}:{lineno}: expected a machine type or '<file>,<original file>,<0|1>', got {row}")
    return labels


class DCASE2020T2(LayoutDataset):
    """DCASE 2020 Challenge Task 2 (MIMII + ToyADMOS), from the official zips (needs --root)."""

    # `asdbench data download`: development, additional training and evaluation sets, evaluation ground truth
    zenodo = {"dev": "3678171", "additional": "3727685", "eval": "3841772", "labels": "3951620"}

    name = "dcase2020t2"

    def __init__(self, root: str = "", protocol: str = "paper", eval_labels: str = "", strict: bool = True,
                 channel: str = "first") -> None:
        root = root or os.environ.get(ROOT_ENV, "")
        if not root:
            raise AsdbenchError(DOWNLOAD_HELP)
        if protocol not in PROTOCOLS:
            raise AsdbenchError(f"dataset.protocol={protocol!r} is not one of: {', '.join(PROTOCOLS)}")
        path = Path(root).expanduser()
        subsets = [path / s for s in SUBSETS if (path / s).is_dir()] or [path]
        scan = Scan()
        for folder in subsets:
            scan.extend(scan_tree(folder))
        self.misfits = scan.misfits
        if scan.misfits and strict:
            other = layout_years(scan_sections(path)) if not scan.clips["train"] else []
            if other:
                years = other[0][5:9] if len(other) == 1 else f"{other[0][5:9]}-{other[-1][5:9]}"
                raise AsdbenchError(f"{path} holds a DCASE {years} Task 2 layout (sections, domains), not DCASE 2020's: "
                                    f"use --dataset {' or '.join(other)}")
            raise misfit_error(scan.misfits)
        if not scan.clips["train"] and not scan.clips["test"]:
            raise AsdbenchError(f"no DCASE 2020 Task 2 clips under {path}: expected dev_data/<Type>/train/*.wav ... " + DOWNLOAD_HELP[DOWNLOAD_HELP.index("Download"):])

        test = scan.clips["test"]
        if eval_labels:
            labels = read_eval_labels(Path(eval_labels).expanduser())
            test = [self._labelled(c, labels) for c in test]
        dev_ids = {(c.machine_type, c.machine_id) for c in scan.clips["test"] if c.label is not None}
        train = scan.clips["train"]
        self.parts = tuple(
            part for part in (
                Part("development set", tuple(c for c in train + scan.clips["test"] if (c.machine_type, c.machine_id) in dev_ids)),
                Part("additional training set", tuple(c for c in train if (c.machine_type, c.machine_id) not in dev_ids)),
                Part("evaluation set (test)", tuple(c for c in scan.clips["test"] if c.label is None)),
            ) if part.clips
        )
        self.protocol = protocol
        if protocol == "dev":
            train = [c for c in train if (c.machine_type, c.machine_id) in dev_ids]
        if protocol == "eval":
            test = [c for c in test if (c.machine_type, c.machine_id) not in dev_ids]
        else:
            test = [c for c in test if (c.machine_type, c.machine_id) in dev_ids]
        super().__init__(path, {"train": train, "test": test}, 10.0, channel)

    @staticmethod
    def recognises(root: Path) -> bool:
        """Whether ``root`` holds DCASE 2020's file names (``asdbench run --root DIR`` without ``--dataset``) and is not
        a tree the synthetic generator wrote (that is the ``synthetic`` data set's, in the same layout)."""
        return "dcase2020t2" in layouts_under(root) and not is_synthetic_tree(root)

    @staticmethod
    def _labelled(clip: Clip, labels: dict[tuple[str, str], int]) -> Clip:
        if clip.label is not None:
            return clip
        key = (clip.machine_type, clip.name)
        if key not in labels:
            raise AsdbenchError(f"{clip.path} is not in the evaluation ground truth (eval_data_list.csv)")
        return Clip(clip.path, clip.machine_type, clip.machine_id, clip.split, labels[key])

    def describe(self) -> str:
        found = "; ".join(p.summary() for p in self.parts)
        return f"{self.name} at {self.root}, protocol {self.protocol}. Found {found}"


@hookimpl
def register_datasets(register):
    register("dcase2020t2", DCASE2020T2)
