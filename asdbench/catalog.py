"""What the installed plugins offer, readable without importing them: names, packages, descriptions, parameters,
system recipes and load failures.

Importing the plugins imports torch, seconds before anything is printed; ``asdbench list``, ``config show`` and
``run --help`` need only what the plugins registered. So the first time one of them loads the plugins, that is
written to ``$ASDBENCH_CACHE/plugin-catalog.json``, keyed by the entry points (distribution, version, name, target),
``ASDBENCH_LOAD_PLUGINS`` and the size and modification time of every Python file of asdbench and of the packages
the entry points live in; later calls read it while the key matches. Installing, removing or editing a plugin
changes the key, and the next call loads the plugins again. A plugin whose parameters JSON cannot carry (a default
that is an object), or one that fails to load (it may mend by an install the key does not see), leaves the catalog
unwritten, and every call loads the plugins, as without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asdbench
from asdbench.api.system import SystemSpec
from asdbench.atomic import write_text
from asdbench.cache import cache_dir
from asdbench.errors import AsdbenchError
from asdbench.plugins import PluginFailure, Plugins, entry_points, get_plugins
from asdbench.registry import KINDS, Registry, factory_params

FORMAT = 2  # 2: the augmentation kind


@dataclass
class Catalog:
    """The registries as the catalog file holds them: systems' specs, components' parameters, no factories."""

    registries: dict[str, Registry]
    failures: list[PluginFailure] = field(default_factory=list)

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]


def plugin_catalog() -> Catalog | Plugins:
    """The catalog if it is current, else the loaded plugins (and the catalog written for next time)."""
    if os.environ.get("ASDBENCH_RAISE_PLUGIN_ERRORS", "") not in ("", "0"):
        return get_plugins()  # a plugin author wants the import error itself
    path = cache_dir() / "plugin-catalog.json"
    key = fingerprint()
    try:
        stored = json.loads(path.read_text())
        if stored.get("format") == FORMAT and stored.get("key") == key:
            return _from_json(stored)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent, unreadable or from another version: rebuilt below
    plugins = get_plugins()
    data = _to_json(plugins)
    if data is not None and not plugins.failures:  # a failure may mend outside the key (a dependency installed)
        _write(path, {"format": FORMAT, "key": key, **data})
    return plugins


def fingerprint() -> str:
    """A digest of everything the registries depend on, computed without importing any plugin."""
    parts: list[Any] = [asdbench.__version__, os.environ.get("ASDBENCH_LOAD_PLUGINS")]
    roots = {Path(asdbench.__file__).parent}
    for ep in entry_points():
        parts.append([ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "", ep.name, ep.value])
        roots.update(_source_roots(ep.value.split(":")[0].split(".")[0]))
    for root in sorted(roots):
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for file in files:
            try:
                stat = file.stat()
            except OSError:  # a dangling link, a file removed meanwhile: its absence is part of the key
                parts.append([str(file), None])
                continue
            parts.append([str(file), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _source_roots(top_level: str) -> list[Path]:
    """The folder (or file) of a top-level module, found without importing it."""
    try:
        spec = importlib.util.find_spec(top_level)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


def _to_json(plugins: Plugins) -> dict[str, Any] | None:
    """The registries as JSON, or None where JSON would not give back the same values."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        rows = []
        for entry in plugins.registry(kind):
            row: dict[str, Any] = {"name": entry.name, "package": entry.package, "description": entry.description}
            if kind == "system":
                if not isinstance(entry.factory, SystemSpec):
                    return None
                row["spec"] = dataclasses.asdict(entry.factory)
            else:
                row["params"] = factory_params(entry.factory)
            rows.append(row)
        kinds[kind] = rows
    data = {"kinds": kinds, "failures": [dataclasses.asdict(f) for f in plugins.failures]}
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return None
    return data if _same(json.loads(text), data) else None


def _same(decoded: Any, original: Any) -> bool:
    """Whether JSON gave back ``original``, a tuple read back as a list counting as the same."""
    if isinstance(original, (list, tuple)):
        return isinstance(decoded, list) and len(decoded) == len(original) and all(map(_same, decoded, original))
    if isinstance(original, dict):
        return isinstance(decoded, dict) and decoded.keys() == original.keys() and all(
            _same(decoded[k], v) for k, v in original.items())
    return type(decoded) is type(original) and (decoded == original or decoded != decoded)  # NaN equals itself here


def _from_json(stored: dict[str, Any]) -> Catalog:
    registries = {kind: Registry(kind) for kind in KINDS}
    for kind in KINDS:
        for row in stored["kinds"][kind]:
            factory = SystemSpec(**row["spec"]) if kind == "system" else None
            registries[kind].add(row["name"], factory, row["package"], row["description"], row.get("params"))
    return Catalog(registries, [PluginFailure(**f) for f in stored["failures"]])


def _write(path: Path, data: dict[str, Any]) -> None:
    """Never an error: without a writable cache the catalog is simply rebuilt each time."""
    try:
        write_text(path, json.dumps(data))
    except AsdbenchError:
        pass

