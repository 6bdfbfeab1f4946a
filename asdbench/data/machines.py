"""A data set narrowed to some machine types and IDs: the ``types`` and ``ids`` keys (``run --types fan,pump``).

The narrowing wraps the data set instead of filtering in each place that reads clips, so the run's summary, its
plan, its data fingerprint and its ``data_summary.csv`` all see the same clips; the wave cache still keys on the
data set itself (:func:`unwrap`), so a narrowed run reuses the clips a whole run decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asdbench.api import Clip, Dataset, Split
from asdbench.errors import AsdbenchError


def id_key(text: str) -> str:
    """One spelling of an ID or section: ``"0"``, ``"00"``, ``"id_00"``, ``"section_00"`` are all ``"00"``."""
    bare = text.strip().lower().removeprefix("section_").removeprefix("id_")
    return bare.zfill(2) if bare.isdigit() else bare


class MachineSelection:
    """The clips of ``dataset`` whose machine type is one of ``types`` and whose ID (section) one of ``ids``; an
    empty list keeps every one. Everything else is the data set's own."""

    def __init__(self, dataset: Dataset, types: list[str], ids: list[str]) -> None:
        self.inner = dataset
        clips = [*dataset.clips("train"), *dataset.clips("test")]
        found = {c.machine_type.lower(): c.machine_type for c in clips}
        unknown = [t for t in types if t.lower() not in found]
        if unknown:
            raise AsdbenchError(f"--types: {dataset.name} has no machine type {', '.join(unknown)} "
                                f"(it has {', '.join(sorted(found.values()))})")
        self.types = {found[t.lower()] for t in types}
        chosen = [c for c in clips if not self.types or c.machine_type in self.types]
        present = {id_key(c.machine_id) for c in chosen}
        missing = [i for i in ids if id_key(i) not in present]
        if missing:
            where = f" of {', '.join(sorted(self.types))}" if self.types else ""
            raise AsdbenchError(f"--ids: {dataset.name} has no ID {', '.join(missing)}{where} "
                                f"(it has {', '.join(sorted(present))})")
        self.ids = {id_key(i) for i in ids}

    def keeps(self, clip: Clip) -> bool:
        return (not self.types or clip.machine_type in self.types) and (not self.ids or id_key(clip.machine_id) in self.ids)

    def clips(self, split: Split) -> list[Clip]:
        return [c for c in self.inner.clips(split) if self.keeps(c)]

    def describe(self) -> str:
        only = [f"types {', '.join(sorted(self.types))}" if self.types else "",
                f"IDs {', '.join(sorted(self.ids))}" if self.ids else ""]
        return f"{self.inner.describe()}; only {' and '.join(o for o in only if o)}"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being unpickled): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def select_machines(dataset: Dataset, values: Mapping[str, Any]) -> Dataset:
    """``dataset`` narrowed to the ``types`` and ``ids`` of a config's ``values`` (itself when they name none)."""
    types, ids = values.get("types", []), values.get("ids", [])
    return MachineSelection(dataset, types, ids) if types or ids else dataset


def unwrap(dataset: Dataset) -> Dataset:
    """The data set a selection narrows (what decodes the clips)."""
    return dataset.inner if isinstance(dataset, MachineSelection) else dataset
