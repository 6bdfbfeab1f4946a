from importlib import metadata
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import asdbench
from asdbench import plugins as plugin_mod
from asdbench.cli import cli
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.registry import KINDS


def test_builtins_come_from_the_entry_point_group():
    eps = metadata.entry_points(group="asdbench")
    assert {ep.dist.name for ep in eps if ep.value.startswith("asdbench_plugins.")} == {"asdbench"}
    loaded = build_plugins()
    assert not loaded.failures
    assert "dcase-ae" in loaded.registry("system")
    for kind in KINDS:
        assert all(e.package == "asdbench" for e in loaded.registry(kind))
    assert loaded.registry("scorer").get("Recon_Error").name == "recon-error"


class _DuplicateScorer:
    @asdbench.hookimpl
    def register_scorers(self, register):
        register("recon-error", object)


def test_duplicate_name_names_both_packages():
    with pytest.raises(AsdbenchError) as err:
        build_plugins(extra={"dup": ("asdbench-dup", _DuplicateScorer())})
    assert "'asdbench'" in str(err.value) and "'asdbench-dup'" in str(err.value)


def _fake_entry_point(name, value, dist):
    ep = metadata.EntryPoint(name=name, value=value, group="asdbench")
    return SimpleNamespace(name=ep.name, value=ep.value, load=ep.load, dist=SimpleNamespace(name=dist))


def test_broken_plugin_is_reported_and_others_still_load(monkeypatch):
    real = plugin_mod.entry_points()
    broken = _fake_entry_point("broken", "asdbench_no_such_module_xyz", "asdbench-broken")
    monkeypatch.setattr(plugin_mod, "entry_points", lambda: [broken, *real])
    monkeypatch.delenv("ASDBENCH_LOAD_PLUGINS")
    loaded = build_plugins()
    assert [(f.package, f.entry_point) for f in loaded.failures] == [("asdbench-broken", "broken")]
    assert "ModuleNotFoundError" in loaded.failures[0].error
    assert "dcase-ae" in loaded.registry("system")

    monkeypatch.setenv("ASDBENCH_RAISE_PLUGIN_ERRORS", "1")
    with pytest.raises(ModuleNotFoundError):
        build_plugins()


class _MisspelledHook:
    @asdbench.hookimpl
    def register_scorer(self, register):  # missing "s": matches no hook
        register("never", object)


class _RaisingHook:
    @asdbench.hookimpl
    def register_losses(self, register):
        raise RuntimeError("boom")


def test_misspelled_or_raising_hooks_are_reported_not_fatal():
    loaded = build_plugins(extra={"typo": ("asdbench-typo", _MisspelledHook()), "raiser": ("asdbench-raiser", _RaisingHook())})
    packages = {f.package for f in loaded.failures}
    assert packages == {"asdbench-typo", "asdbench-raiser"}
    assert "never" not in loaded.registry("scorer")
    assert "mse" in loaded.registry("loss")


def test_allow_list_loads_nothing_when_empty(monkeypatch):
    monkeypatch.setenv("ASDBENCH_LOAD_PLUGINS", "")
    loaded = build_plugins()
    assert len(loaded.registry("system")) == 0


def test_unknown_name_suggests_close_matches():
    with pytest.raises(AsdbenchError, match="Did you mean dcase-ae"):
        build_plugins().registry("system").get("dcase_a")


def test_list_command_shows_kind_package_and_description():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    for title in ("datasets", "frontends", "backbones", "losses", "scorers", "systems"):
        assert title in result.output
    assert "dcase-ae" in result.output and "asdbench" in result.output
    data = CliRunner().invoke(cli, ["list", "scorer", "--json"])
    scorers = {e["name"]: e for e in __import__("json").loads(data.output)["scorer"]}
    assert scorers["recon-error"]["package"] == "asdbench"
    assert scorers["recon-error"]["description"].startswith("Mean squared reconstruction error")


def test_every_hook_is_documented_in_contributing():
    from pathlib import Path

    text = (Path(__file__).parents[3] / "CONTRIBUTING.md").read_text()
    pm = build_plugins().manager
    for name in dir(pm.hook):
        if name.startswith("register_"):
            args = ", ".join(getattr(pm.hook, name).spec.argnames)
            assert f"{name}({args})" in text, f"{name} is not documented in CONTRIBUTING.md"
