"""Name -> factory tables, one per plugin kind, that remember which package registered what."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any

from asdbench.errors import AsdbenchError

KINDS = ("dataset", "frontend", "backbone", "loss", "scorer", "system")
PLURALS = {kind: "losses" if kind == "loss" else f"{kind}s" for kind in KINDS}


def normalize(name: str) -> str:
    """Lookup is case-insensitive and treats ``_`` like ``-`` (``Dense_AE`` finds ``dense-ae``)."""
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Any
    package: str
    description: str
    params: dict[str, Any] | None = None  # settable parameters, when read from the catalog instead of the factory


def _first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Entries of one kind. A name claimed by two packages is an error naming both."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Any, package: str, description: str | None = None,
            params: dict[str, Any] | None = None) -> None:
        key = normalize(name)
        if not key:
            raise AsdbenchError(f"package '{package}' registered a {self.kind} with an empty name")
        if key in self._entries:
            other = self._entries[key].package
            raise AsdbenchError(
                f"{self.kind} '{key}' is registered by two packages: '{other}' and '{package}'; "
                f"uninstall one, or exclude it with ASDBENCH_LOAD_PLUGINS"
            )
        text = description if description is not None else _first_doc_line(factory)
        self._entries[key] = Entry(self.kind, key, factory, package, text, params)

    def get(self, name: str) -> Entry:
        key = normalize(name)
        if key in self._entries:
            return self._entries[key]
        close = difflib.get_close_matches(key, self._entries, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(self._entries)) or "none"
        raise AsdbenchError(f"unknown {self.kind} '{name}'.{hint} Available: {known}")

    def __iter__(self):
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __contains__(self, name: str) -> bool:
        return normalize(name) in self._entries

    def __len__(self) -> int:
        return len(self._entries)
