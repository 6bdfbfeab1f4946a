"""Name -> factory tables, one per plugin kind, that remember which package registered what, and what a factory's
settable parameters are."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Protocol

from asdbench.errors import AsdbenchError

KINDS = ("dataset", "frontend", "backbone", "loss", "scorer", "augmentation", "system")
PLURALS = {kind: "losses" if kind == "loss" else f"{kind}s" for kind in KINDS}
# Arguments the runner passes itself; never settable from the config.
CONTEXT_ARGS = {"sample_rate", "num_samples", "input_shape", "num_classes", "embedding_dim", "dataset"}


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


class Registries(Protocol):
    """What resolving a config reads: the loaded plugins or the catalog written from them."""

    def registry(self, kind: str) -> Registry: ...


def factory_params(factory: Any) -> dict[str, Any]:
    """Settable parameters of a component factory and their defaults (``None`` if required).

    A class whose ``__init__`` passes ``**kwargs`` on to its base also offers the
    base's parameters, so a subclass need not repeat them.
    """
    targets = [c.__init__ for c in inspect.getmro(factory) if "__init__" in vars(c)] if inspect.isclass(factory) else [factory]
    params: dict[str, Any] = {}
    for target in targets:
        forwards = False
        for p in inspect.signature(target).parameters.values():
            if p.kind == p.VAR_KEYWORD:
                forwards = True
            if p.name == "self" or p.name in CONTEXT_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params.setdefault(p.name, None if p.default is inspect.Parameter.empty else p.default)
        if not forwards:
            break
    return params
