"""``asdbench doctor``'s findings: what a bug report needs and what the README's install promises, checked.

Every check runs on its own and turns any failure into a finding, so the report is whole even where torch
does not load: that is when it is needed most.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import asdbench
from asdbench import environment
from asdbench.cache import cache_dir
from asdbench.errors import AsdbenchError, described

# Reported with their versions: the numeric packages, then what stores, reads and shows results.
REPORTED = (*environment.NUMERIC_PACKAGES, "mlflow", "safetensors", "soundfile", "matplotlib", "pluggy", "click",
            "rich", "ray")
OPTIONAL = {"ray": "only 'asdbench sweep' needs it: pip install 'asdbench[sweep]'"}
LOW_SPACE = 2 * 2**30  # a DCASE development set's decoded waves alone take several GiB


@dataclass(frozen=True)
class Finding:
    section: str
    name: str
    value: str
    status: str  # ok | info | warn | fail


@dataclass(frozen=True)
class Report:
    findings: list[Finding]

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)

    def as_json(self) -> dict[str, object]:
        return {"asdbench": asdbench.__version__, "python": platform.python_version(), "platform": platform.platform(),
                "packages": environment.versions(REPORTED), "ok": not self.failed,
                "findings": [asdict(f) for f in self.findings]}


def _source() -> str:
    from asdbench.tracking.store import git_commit

    commit = git_commit()
    return f"{Path(asdbench.__file__).resolve().parent.parent}" + (f" (git {commit[:7]})" if commit else "")


def _python() -> list[Finding]:
    return [Finding("asdbench", "version", f"{asdbench.__version__}, from {_source()}", "info"),
            Finding("python", "version", f"{platform.python_version()} ({sys.executable})", "info"),
            Finding("python", "platform", f"{platform.platform()}, {os.cpu_count()} CPUs", "info")]


def _packages() -> list[Finding]:
    found = []
    for name, value in environment.versions(REPORTED).items():
        if value is None:
            found.append(Finding("packages", name, f"not installed; {OPTIONAL[name]}" if name in OPTIONAL
                                 else "not installed", "info" if name in OPTIONAL else "fail"))
        else:
            found.append(Finding("packages", name, value, "ok"))
    return found


def _lock() -> list[Finding]:
    if not environment.LOCK_FILE.is_file():
        return [Finding("packages", "lock", "no requirements-lock.txt beside this install (installed from a "
                        "package): versions as its ranges allowed", "info")]
    differences = environment.lock_differences()
    if differences:
        return [Finding("packages", "lock", f"{len(differences)} differ from {environment.LOCK_FILE.name}: "
                        + ", ".join(differences) + "; the tested set: README, 'Set up and run'", "warn")]
    return [Finding("packages", "lock", f"every installed package as {environment.LOCK_FILE.name} pins it", "ok")]


def _load(module: str, exercise: Callable[[object], object]) -> Finding:
    """Import ``module`` and run one of its compiled operators: a companion can import and still fail there."""
    label = "torch" if module == "torch" else f"{module} beside torch"
    try:
        exercise(environment.require(module))
    except AsdbenchError as exc:
        return Finding("native libraries", label, str(exc), "fail")
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        problem = environment.diagnose(exc)
        return Finding("native libraries", label, str(problem) if problem else described(exc, True, 300), "fail")
    return Finding("native libraries", label, "loads", "ok")


def _natives() -> list[Finding]:
    def torch_op(torch):
        return torch.ones(2) @ torch.ones(2)

    def torchaudio_op(torchaudio):
        import torch

        return torchaudio.functional.resample(torch.zeros(160), 16000, 8000)

    def torchvision_op(torchvision):
        import torch

        return torchvision.ops.nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([1.0]), 0.5)

    return [_load("torch", torch_op), _load("torchaudio", torchaudio_op), _load("torchvision", torchvision_op)]


def _device() -> list[Finding]:
    import torch

    from asdbench.runtime import native_bf16

    found = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            found.append(Finding("device", f"cuda:{index}", f"{torch.cuda.get_device_name(index)}, capability "
                                 f"{major}.{minor}, CUDA {torch.version.cuda}, bf16 "
                                 f"{'native' if native_bf16(torch.device('cuda', index)) else 'emulated'}", "ok"))
    else:
        built = f"this torch is built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only torch build"
        found.append(Finding("device", "cuda", f"no CUDA device ({built}): runs use the CPU", "info"))
    cpu = torch.device("cpu")
    found.append(Finding("device", "cpu", f"{torch.backends.cpu.get_cpu_capability()} kernels, "
                         f"{torch.get_num_threads()} threads, bf16 "
                         f"{'native: precision=auto trains in bf16' if native_bf16(cpu) else 'emulated: precision=auto trains in fp32'}",
                         "info"))
    return found


def _writable_folder(path: Path) -> tuple[bool, Path]:
    """Whether files can be made at ``path`` (a folder made on demand): its nearest existing ancestor is a
    writable folder. Returns that ancestor too."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK), probe


def _tracking() -> list[Finding]:
    from asdbench.tracking.store import resolve_tracking_uri, sqlite_database

    uri = resolve_tracking_uri(None)
    source = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "MLflow's default"
    database = sqlite_database(uri)
    if database is not None or uri.startswith("file:") or "://" not in uri:
        folder = database.parent if database else Path(uri.removeprefix("file://").removeprefix("file:")).expanduser()
        ok, existing = _writable_folder(folder)
        if database is not None and database.exists():
            ok = ok and database.is_file() and os.access(database, os.W_OK)
        state = "writable" if ok else f"NOT writable ({existing} is not a writable folder)"
        return [Finding("tracking", "store", f"{uri} ({source}): {state}", "ok" if ok else "fail")]
    return [Finding("tracking", "store", f"{uri} ({source}): a server, written at run time (not probed here)",
                    "info")]


def _cache() -> list[Finding]:
    root = cache_dir()
    ok, existing = _writable_folder(root)
    if not ok:
        return [Finding("cache", "folder", f"{root}: NOT writable ({existing} is not a writable folder); set "
                        "ASDBENCH_CACHE to one that is", "fail")]
    free = shutil.disk_usage(existing).free
    low = free < LOW_SPACE
    return [Finding("cache", "folder", f"{root} ({'ASDBENCH_CACHE' if os.environ.get('ASDBENCH_CACHE') else 'default'}): "
                    f"writable, {free / 2**30:,.1f} GiB free" + (" (low: decoded DCASE waves take several GiB)" if low else ""),
                    "warn" if low else "ok")]


def _plugins() -> list[Finding]:
    from asdbench.plugins import build_plugins

    try:
        plugins = build_plugins()
    except AsdbenchError as exc:
        return [Finding("plugins", "loading", str(exc), "fail")]
    counts: dict[str, int] = {}
    for registry in plugins.registries.values():
        for entry in registry:
            counts[entry.package] = counts.get(entry.package, 0) + 1
    found = [Finding("plugins", package, f"{environment.version(package) or '?'}: {count} components and systems", "ok")
             for package, count in sorted(counts.items())]
    found += [Finding("plugins", f"{f.package}:{f.entry_point}", f"failed to load: {f.error}", "fail")
              for f in plugins.failures]
    return found


CHECKS: tuple[tuple[str, Callable[[], list[Finding]]], ...] = (
    ("python", _python), ("packages", _packages), ("packages", _lock), ("native libraries", _natives),
    ("device", _device), ("tracking", _tracking), ("cache", _cache), ("plugins", _plugins))


def examine() -> Report:
    """Every check, each guarded: one that fails becomes a ``fail`` finding, and the others still run."""
    findings: list[Finding] = []
    for section, check in CHECKS:
        try:
            findings += check()
        except Exception as exc:  # noqa: BLE001 - the report must be whole, whatever broke
            problem = environment.diagnose(exc)
            findings.append(Finding(section, "check", str(problem) if problem else described(exc, True, 300), "fail"))
    return Report(findings)
