"""What this installation is made of, and one line instead of a traceback when torch's native parts do not load.

torchaudio and torchvision ship compiled libraries built against one torch release. Installed from another
release (torchaudio 2.11.1 beside torch 2.11.0: a registry release that a ``==2.11.*`` range let in), the library
fails to load with a linker error at the bottom of a long traceback, and nothing in it says that the fix is one
``pip install``. :func:`diagnose` turns such an error into a message that names both versions and that command;
the CLI, the plugin loader and :func:`require` use it, so the user meets it wherever torchaudio is first imported.

This module imports nothing heavy: it must work when torch itself does not load.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path
from types import ModuleType, TracebackType

from asdbench.errors import AsdbenchError

# Packages whose version can move a run's numbers (kernels, resampling, metrics, solvers): logged with every run
# and compared between the rows of a table.
NUMERIC_PACKAGES = ("torch", "torchaudio", "torchvision", "numpy", "scipy", "scikit-learn")
# torch's companions: each release of torch has exactly one release of each that loads beside it.
COMPANIONS = ("torchaudio", "torchvision")
NATIVE_ERRORS = (OSError, ImportError, RuntimeError)
# What a dynamic loader, or torch's operator registry, says when a compiled part does not fit what loads it.
LOADER_WORDS = re.compile(r"undefined symbol|cannot open shared object|Could not load this library|DLL load failed|"
                          r"Library not loaded|Symbol not found|image not found|incompatible architecture|"
                          r"version `[^']+' not found|\boperator \w+::\w+ does not exist")
# The lock file of a source checkout (README, "Upgrading dependencies"); absent from an installed wheel.
LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements-lock.txt"


class NativeLoadError(AsdbenchError):
    """A compiled part of torch, torchaudio or torchvision does not load in this environment."""


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions(names: tuple[str, ...] = NUMERIC_PACKAGES) -> dict[str, str | None]:
    return {name: version(name) for name in names}


def installed_distributions() -> dict[str, str]:
    """Every distribution of this environment, by normalised name: what a run logs as ``environment.json``."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return dict(sorted(found.items()))


def canonical(name: str) -> str:
    """PEP 503 normalisation: ``Scikit_Learn`` and ``scikit-learn`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def describe() -> dict[str, object]:
    """The environment of a run, as logged with it: Python, the platform and every installed distribution."""
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "executable": sys.executable,
            "packages": installed_distributions()}


def companion_release(package: str, torch_version: str) -> str | None:
    """The release of ``package`` (torchaudio, torchvision) built for ``torch_version`` (2.x): torchaudio carries
    torch's own number, torchvision 0.(minor + 15).patch."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", torch_version)
    if not match or match.group(1) != "2":
        return None
    minor, patch = int(match.group(2)), int(match.group(3))
    return {"torchaudio": f"2.{minor}.{patch}", "torchvision": f"0.{minor + 15}.{patch}"}.get(package)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _package_dirs(package: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    return [str(Path(p).resolve()) for p in (spec.submodule_search_locations or [])] if spec else []


def _frames(tb: TracebackType | None) -> list[str]:
    return [str(Path(frame.filename).resolve()) for frame, _ in traceback.walk_tb(tb)]


def failing_package(exc: BaseException) -> str | None:
    """Which of torch, torchaudio, torchvision failed to load a compiled part in ``exc``, if one did. Only a
    loader's failure counts (an undefined symbol, a missing library or operator), never an error that torch's
    code raises while it runs; the package is the one whose library or operator the message names, or whose code
    the failure passed through (companions first: libtorchaudio is loaded by torch's own loader)."""
    chain = [e for e in _chain(exc) if isinstance(e, NATIVE_ERRORS)]
    if not any(LOADER_WORDS.search(str(e)) for e in chain):
        return None
    for package in (*COMPANIONS, "torch"):
        names = rf"lib{package}|\b{package}::|[/\\]{package}[/\\]" + (r"|libc10|\btorch\._C\b" if package == "torch" else "")
        dirs = _package_dirs(package)
        for error in chain:
            if re.search(names, str(error)) or any(f.startswith(d) for f in _frames(error.__traceback__) for d in dirs):
                return package
    return None


def _innermost_detail(exc: BaseException) -> str:
    """The linker's own words (``libtorchaudio.so: undefined symbol: ...``), paths shortened to file names."""
    text = str(_chain(exc)[-1]).strip().splitlines()
    detail = text[-1] if text else type(exc).__name__
    return re.sub(r"(?:/[^\s:/]+)+/([^\s:/]+)", r"\1", detail)[:200]


def diagnose(exc: BaseException) -> NativeLoadError | None:
    """The one-line error to show instead of ``exc``, when ``exc`` is torch, torchaudio or torchvision failing to
    load a compiled part; None for any other error. Never raises."""
    try:
        package = failing_package(exc)
        if package is None:
            return None
        detail = _innermost_detail(exc)
        torch_version = version("torch")
        pip = f"{sys.executable} -m pip install"
        if torch_version is None:
            return NativeLoadError(f"{package} does not load ({detail}): torch is not installed; install asdbench "
                                   f"again as the README says")
        if package == "torch":
            return NativeLoadError(f"torch {torch_version} does not load ({detail}); reinstall it: "
                                   f"{pip} --force-reinstall 'torch=={torch_version.split('+')[0]}'")
        found, wanted = version(package), companion_release(package, torch_version)
        if wanted and found and found.split("+")[0] != wanted:
            return NativeLoadError(f"{package} {found} does not load beside torch {torch_version} ({detail}): each "
                                   f"torch release has its own {package}; fix: {pip} '{package}=={wanted}'")
        return NativeLoadError(f"{package} {found} does not load beside torch {torch_version} ({detail}); "
                               f"reinstall both from one release: {pip} --force-reinstall "
                               f"'torch=={torch_version.split('+')[0]}' '{package}=={(found or '').split('+')[0]}'")
    except Exception:  # noqa: BLE001 - a diagnosis that fails must leave the original error to be seen
        return None


def require(module: str) -> ModuleType:
    """``import module``, with :func:`diagnose`'s one line instead of a native load failure's traceback."""
    try:
        return importlib.import_module(module)
    except NATIVE_ERRORS as exc:
        problem = diagnose(exc)
        if problem is None:
            raise
        raise problem from None


def lock_pins(path: Path = LOCK_FILE) -> dict[str, str]:
    """The versions ``path`` (a ``uv pip compile`` output) pins for this interpreter and platform."""
    from packaging.requirements import Requirement

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonical(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def lock_differences(path: Path = LOCK_FILE) -> list[str]:
    """Installed packages whose version is not the lock's (``numpy 2.3.0 (lock: 2.4.6)``); a locked package that
    is not installed (an extra's) is not a difference."""
    installed = installed_distributions()
    return [f"{name} {installed[name]} (lock: {pinned})" for name, pinned in sorted(lock_pins(path).items())
            if name in installed and installed[name].split("+")[0] != pinned]
