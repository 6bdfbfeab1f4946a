"""``synthetic``: generated machine sounds in the DCASE 2020 Task 2 layout, cached on first use."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asdbench import hookimpl
from asdbench.audio import write_wav
from asdbench.cache import cache_dir
from asdbench.errors import AsdbenchError
from asdbench_plugins.datasets.dcase2020_layout import LayoutDataset, clip_name, misfit_error, scan_tree
from asdbench_plugins.datasets.machine_sounds import MACHINE_TYPES, SAMPLE_RATE, machine_clip

# Bump when the generator's output changes, so stale caches are not reused.
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class Size:
    types: tuple[str, ...]
    ids: tuple[int, ...]
    train: int
    test_normal: int
    test_anomaly: int
    seconds: float


SIZES = {
    "tiny": Size(("fan", "valve"), (0, 2), 10, 6, 6, 1.0),
    "small": Size(MACHINE_TYPES, (0, 2, 4), 60, 30, 30, 2.0),
    "full": Size(MACHINE_TYPES, (0, 2, 4, 6), 300, 100, 100, 10.0),
}


def _size(name: str) -> Size:
    if name not in SIZES:
        raise AsdbenchError(f"unknown synthetic size '{name}'; choose one of: {', '.join(SIZES)}")
    return SIZES[name]


def generate(out: Path, size: str = "small", seed: int = 2020, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the tree under ``out`` (which must not exist or be empty), atomically (:func:`write_tree`)."""
    spec = _size(size)
    jobs = [
        (mtype, mid, split, label, index)
        for mtype in spec.types
        for mid in spec.ids
        for split, label, count in (("train", 0, spec.train), ("test", 0, spec.test_normal), ("test", 1, spec.test_anomaly))
        for index in range(count)
    ]

    def write(tmp: Path) -> dict:
        for done, (mtype, mid, split, label, index) in enumerate(jobs, start=1):
            folder = tmp / mtype / split
            folder.mkdir(parents=True, exist_ok=True)
            wave = machine_clip(seed, mtype, mid, index, spec.seconds, bool(label), 0 if split == "train" else 1)
            write_wav(folder / clip_name(label, f"{mid:02d}", index), wave, SAMPLE_RATE)
            if progress:
                progress(done, len(jobs))
        return {"generator_version": GENERATOR_VERSION, "size": size, "seed": seed, "clips": len(jobs)}

    return write_tree(out, write)


def write_tree(out: Path, write: Callable[[Path], dict]) -> Path:
    """Run ``write(folder)`` on a temporary sibling of ``out`` and rename it into place with the ``MANIFEST.json``
    it returns, so an interrupted generation never leaves a half tree that looks complete. ``out`` must not exist
    or be empty; a tree another process finished first at ``out`` is kept."""
    if out.exists() and any(out.iterdir()):
        raise AsdbenchError(f"{out} exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = write(tmp)
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except OSError:
            if not (out / "MANIFEST.json").exists():
                raise
            # Another process (a run started at the same time) generated the same tree first: use theirs.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / "MANIFEST.json").read_text())
        return {"size": manifest["size"], "seed": manifest["seed"], "generator_version": manifest["generator_version"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AsdbenchError(f"{path / 'MANIFEST.json'} is not a synthetic data set manifest ({exc})") from None


def stated_by(root: Path) -> dict:
    """The size and seed a generated tree's manifest states: ``--root DIR`` reads the tree as written (the CLI fills
    ``dataset.size`` and ``dataset.seed`` from here unless they are set)."""
    path = Path(root).expanduser()
    if not (path / "MANIFEST.json").exists():
        return {}
    found = _read_manifest(path)
    return {"size": found["size"], "seed": found["seed"]}


def _check_manifest(path: Path, size: str, seed: int) -> None:
    """A tree given as ``root`` must be the one the config describes: its size sets the clip length, and size and
    seed are what the run logs. A mismatch (a size or seed set by hand) is an error saying which ``--set`` makes
    them agree."""
    found = _read_manifest(path)
    if found["generator_version"] != GENERATOR_VERSION:
        raise AsdbenchError(f"{path} was written by synthetic generator v{found['generator_version']}, this asdbench "
                            f"reads v{GENERATOR_VERSION}; write it again with `asdbench data synth`")
    wrong = [f"dataset.{k}={found[k]!r}" for k, v in (("size", size), ("seed", seed)) if found[k] != v]
    if wrong:
        raise AsdbenchError(f"{path} holds the synthetic set of size {found['size']!r}, seed {found['seed']} "
                            f"(its MANIFEST.json), but the config says size {size!r}, seed {seed}: add "
                            + " ".join(f"--set {w}".replace("'", "") for w in wrong))


def is_synthetic_tree(root: Path) -> bool:
    """Whether ``root`` is a tree :func:`generate` wrote (its ``MANIFEST.json``, without another release's
    ``layout``): the synthetic data set's, though its names are DCASE 2020's."""
    try:
        manifest = json.loads((Path(root).expanduser() / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "generator_version" in manifest and "layout" not in manifest


class SyntheticDataset(LayoutDataset):
    """Synthetic machine sounds in the DCASE 2020 layout (no download; sizes tiny, small, full)."""

    name = "synthetic"
    recognises = staticmethod(is_synthetic_tree)  # `--root DIR` alone, DIR written by `asdbench data synth`
    stated_by = staticmethod(stated_by)  # its size and seed, from its manifest

    def __init__(self, size: str = "small", seed: int = 2020, root: str = "") -> None:
        spec = _size(size)
        path = Path(root) if root else cache_dir() / "synthetic" / f"{size}-seed{seed}-v{GENERATOR_VERSION}"
        if not (path / "MANIFEST.json").exists():
            if root:
                raise AsdbenchError(f"{path} holds no generated data set (no MANIFEST.json); run `asdbench data synth --out {path}`")
            generate(path, size, seed)
        _check_manifest(path, size, seed)
        scan = scan_tree(path)
        if scan.misfits:
            raise misfit_error(scan.misfits)
        super().__init__(path, scan.clips, spec.seconds)


@hookimpl
def register_datasets(register):
    register("synthetic", SyntheticDataset)
