"""One tested environment: the lock agrees with pyproject, the install used it, and a companion of torch that does
not load is one line naming both versions and the fix (the README's install broke this way once)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from asdbench import environment
from asdbench.cli import cli

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements-lock.txt"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- ci:{marker} -->\s*```bash\n(.*?)```", text, re.S).group(1).strip()


def _top_requirements() -> list[tuple[Requirement, str | None]]:
    """pyproject's requirements with the extra each belongs to; the self-references (``asdbench[sweep]``) left out."""
    project = _pyproject()
    found = [(Requirement(r), None) for r in project["dependencies"]]
    for extra, requirements in project["optional-dependencies"].items():
        found += [(Requirement(r), extra) for r in requirements if Requirement(r).name != "asdbench"]
    return found


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": e}) for e in (extras or {""}))


def test_the_readme_install_and_ci_use_the_lock():
    install = _readme_block("install")
    assert "-c requirements-lock.txt" in install and "'.[test]'" in install
    # the documented way to make the lock again is the command the lock itself says made it
    header = LOCK.read_text().splitlines()[1].lstrip("#").strip()
    assert header.startswith("uv pip compile pyproject.toml")
    assert header in (ROOT / "README.md").read_text()


def test_every_pyproject_requirement_is_pinned_within_its_range():
    pins = environment.lock_pins(LOCK)
    for requirement, extra in _top_requirements():
        if not _applies(requirement, {extra} if extra else set()):
            continue
        name = environment.canonical(requirement.name)
        assert name in pins, f"{requirement} ({extra or 'core'}) is not in the lock: regenerate it (README)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {name}=={pins[name]}, outside pyproject's {requirement}: regenerate it (README)")


def test_torch_and_its_companions_are_pinned_as_one_release():
    """A range that lets torchaudio move alone is how a fresh install broke."""
    pins = {Requirement(r).name: str(Requirement(r).specifier) for r in _pyproject()["dependencies"]}
    torch = pins["torch"].removeprefix("==")
    assert pins["torch"] == f"=={torch}"
    for companion in environment.COMPANIONS:
        assert pins[companion] == f"=={environment.companion_release(companion, torch)}"


def test_the_lock_is_exactly_what_the_requirements_need_here():
    """The closure of asdbench[test]'s requirements on this platform, walked through the installed packages' own
    metadata, is the set of packages the lock pins here: nothing missing, nothing stale."""
    needed: set[str] = set()
    queue = [(r, {e} if e else set()) for r, e in _top_requirements()]
    while queue:
        requirement, extras = queue.pop()
        name = environment.canonical(requirement.name)
        if not _applies(requirement, extras) or (name, tuple(sorted(requirement.extras))) in needed:
            continue
        needed.add((name, tuple(sorted(requirement.extras))))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is required here but not installed: install with the README's command")
        queue += [(Requirement(r), set(requirement.extras)) for r in requires]
    needed_names, locked = {name for name, _ in needed}, set(environment.lock_pins(LOCK))
    assert not needed_names - locked, f"needed but not in the lock: {sorted(needed_names - locked)}"
    assert not locked - needed_names, f"in the lock but needed by nothing: {sorted(locked - needed_names)}"


def test_the_installed_versions_are_the_locked_ones():
    assert environment.lock_differences(LOCK) == []


def test_companion_releases_of_torch():
    assert environment.companion_release("torchaudio", "2.11.0") == "2.11.0"
    assert environment.companion_release("torchvision", "2.11.0") == "0.26.0"
    assert environment.companion_release("torchvision", "2.5.1+cu124") == "0.20.1"
    assert environment.companion_release("torchaudio", "2.5.1+cpu") == "2.5.1"
    assert environment.companion_release("torchvision", "1.13.1") is None


def test_a_torchvision_operator_missing_is_diagnosed(monkeypatch):
    versions = {"torch": "2.11.0", "torchvision": "0.27.0"}
    monkeypatch.setattr(environment, "version", versions.get)
    problem = environment.diagnose(RuntimeError("operator torchvision::nms does not exist"))
    assert str(problem).startswith("torchvision 0.27.0 does not load beside torch 2.11.0 (operator torchvision::nms")
    assert str(problem).endswith(f"{sys.executable} -m pip install 'torchvision==0.26.0'")
    assert "\n" not in str(problem)


def test_other_errors_are_not_diagnosed():
    import torch

    with pytest.raises(RuntimeError) as raised:  # raised inside torch's code, but torch loaded fine
        torch.ones(2, 3) @ torch.ones(2, 3)
    assert environment.diagnose(raised.value) is None
    assert environment.diagnose(RuntimeError("CUDA out of memory")) is None
    assert environment.diagnose(OSError("[Errno 2] No such file or directory: 'x.wav'")) is None
    assert environment.diagnose(ValueError("libtorchaudio")) is None  # not an error of loading



def test_doctor_reports_this_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["packages"]["numpy"] == metadata.version("numpy")
    assert report["packages"]["torchaudio"] == metadata.version("torchaudio")
    found = {(f["section"], f["name"]): f for f in report["findings"]}
    assert found[("native libraries", "torchaudio beside torch")]["status"] == "ok"
    assert found[("tracking", "store")]["value"].endswith("writable")
    assert found[("packages", "lock")]["status"] == "ok"
    assert found[("plugins", "asdbench")]["status"] == "ok"
    assert not (tmp_path / "store").exists()  # looking is not writing


def test_doctor_fails_on_a_store_that_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 1
    store = {(f["section"], f["name"]): f for f in json.loads(result.output)["findings"]}[("tracking", "store")]
    assert store["status"] == "fail" and f"NOT writable ({tmp_path / 'a-file'} is not a writable folder)" in store["value"]
    table = CliRunner().invoke(cli, ["doctor"])
    assert table.exit_code == 1 and "1 check(s) failed" in table.output
