"""Plugin discovery: every plugin, built-in or third-party, comes from the ``asdbench`` entry-point group.

Entry points load one at a time: a plugin that fails to import is recorded with its
package name and reported, and the others still load (pluggy's own
``load_setuptools_entrypoints`` stops at the first failure). Environment switches:

- ``ASDBENCH_LOAD_PLUGINS=pkg1,pkg2`` loads only those distributions (``asdbench``
  is the built-ins; an empty value loads none).
- ``ASDBENCH_RAISE_PLUGIN_ERRORS=1`` re-raises import errors, for plugin authors.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from asdbench import hookspecs
from asdbench.environment import diagnose
from asdbench.errors import AsdbenchError
from asdbench.registry import KINDS, PLURALS, Registry

GROUP = "asdbench"


@dataclass(frozen=True)
class PluginFailure:
    package: str
    entry_point: str
    error: str


@dataclass
class Plugins:
    """The loaded plugin manager and the registries its hooks filled."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    failures: list[PluginFailure] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)  # plugin name -> distribution name

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]


def _allowed_packages() -> set[str] | None:
    raw = os.environ.get("ASDBENCH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip().lower() for name in raw.split(",") if name.strip()}


def entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=GROUP)
    unique = {(ep.dist.name if ep.dist else "?", ep.name, ep.value): ep for ep in found}
    return sorted(unique.values(), key=lambda ep: ((ep.dist.name if ep.dist else ""), ep.name))


def build_plugins(extra: dict[str, tuple[str, ModuleType | object]] | None = None) -> Plugins:
    """Load entry points (and ``extra`` objects, for tests) and fill one registry per kind."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager, {kind: Registry(kind) for kind in KINDS})
    allowed = _allowed_packages()
    raise_errors = os.environ.get("ASDBENCH_RAISE_PLUGIN_ERRORS", "") not in ("", "0")
    for ep in entry_points():
        package = ep.dist.name if ep.dist else "unknown"
        if allowed is not None and package.lower() not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            problem = diagnose(exc)
            if problem is not None:  # torch's own parts do not load: every plugin and command is affected
                raise problem from None
            if raise_errors:
                raise
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            plugins.failures.append(PluginFailure(package, ep.name, detail))
            continue
        plugin_name = f"{package}:{ep.name}"
        if manager.is_registered(module) or manager.has_plugin(plugin_name):
            continue
        manager.register(module, name=plugin_name)
        plugins.packages[plugin_name] = package
    for plugin_name, (package, obj) in (extra or {}).items():
        manager.register(obj, name=plugin_name)
        plugins.packages[plugin_name] = package
    _drop_unknown_hooks(plugins, raise_errors)
    _collect(plugins, raise_errors)
    return plugins


def _drop_unknown_hooks(plugins: Plugins, raise_errors: bool) -> None:
    """A misspelled hook name (``register_scorer``) is reported, and that plugin left out."""
    while True:
        try:
            plugins.manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if raise_errors:
                raise
            name = plugins.manager.get_name(exc.plugin) or "?"
            plugins.manager.unregister(exc.plugin)
            package = plugins.packages.pop(name, name)
            plugins.failures.append(PluginFailure(package, name, str(exc)))


def _collect(plugins: Plugins, raise_errors: bool) -> None:
    """Call each plugin's hooks one by one, so each ``register`` call knows its package."""
    for kind in KINDS:
        caller = getattr(plugins.manager.hook, f"register_{PLURALS[kind]}")
        for impl in reversed(caller.get_hookimpls()):
            package = plugins.packages.get(impl.plugin_name, impl.plugin_name)

            def register(name: str, factory: object, description: str | None = None, _p=package, _k=kind):
                plugins.registries[_k].add(name, factory, _p, description)

            try:
                impl.function(register=register)
            except AsdbenchError:
                raise
            except Exception as exc:
                if raise_errors:
                    raise
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                plugins.failures.append(PluginFailure(package, impl.plugin_name, detail))


_loaded: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, loaded once on first use (library users need no init call)."""
    global _loaded
    if _loaded is None:
        _loaded = build_plugins()
    return _loaded


def reset_plugins() -> None:
    """Forget loaded plugins, so the next :func:`get_plugins` reads entry points again."""
    global _loaded
    _loaded = None
