"""The command line's own structure: commands imported lazily, their listed help true to each command."""

from __future__ import annotations

import importlib

import click

from asdbench.cli import COMMANDS, cli


def test_listed_help_is_each_commands_own_first_line():
    for name, (module, attr, short) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        assert command.name == name
        assert short == command.get_short_help_str(limit=1000), name



def test_the_catalog_resolves_and_lists_as_the_loaded_plugins_do():
    import json

    from asdbench.catalog import _from_json, _to_json
    from asdbench.config import resolve
    from asdbench.plugins import get_plugins
    from asdbench.registry import KINDS

    plugins = get_plugins()
    catalog = _from_json(json.loads(json.dumps(_to_json(plugins))))
    for kind in KINDS:
        assert [(e.name, e.package, e.description) for e in catalog.registry(kind)] == [
            (e.name, e.package, e.description) for e in plugins.registry(kind)]
    for system in plugins.registry("system"):
        for chosen in ({}, {"loss": "cross-entropy", "frontend": "logmel"}):
            if system.name in ("dcase-ae", "idnn", "glow-aff") and chosen:
                continue  # not classifiers
            assert resolve(catalog, system.name, set_values=chosen) == resolve(plugins, system.name, set_values=chosen)


def test_the_catalog_is_rebuilt_when_plugins_change_and_skipped_when_json_cannot_carry_them(tmp_path, monkeypatch):
    from importlib import metadata
    from pathlib import Path

    from asdbench import catalog, hookimpl
    from asdbench.plugins import build_plugins

    package = tmp_path / "fakeplugin"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(catalog, "entry_points", lambda: [metadata.EntryPoint("fake", "fakeplugin", "asdbench")])
    key = catalog.fingerprint()
    assert catalog.fingerprint() == key
    (package / "__init__.py").write_text("X = 22\n")  # an edited plugin
    assert catalog.fingerprint() != key
    key = catalog.fingerprint()
    (package / "gone.py").symlink_to(tmp_path / "nowhere.py")  # a dangling link neither breaks nor escapes the key
    assert catalog.fingerprint() != key
    key = catalog.fingerprint()
    monkeypatch.setenv("ASDBENCH_LOAD_PLUGINS", "asdbench,fakeplugin")
    assert catalog.fingerprint() != key

    class PathDefault:
        @hookimpl
        def register_scorers(self, register):
            register("path-default", lambda where=Path("/x"): None, "a default JSON cannot carry")

    assert catalog._to_json(build_plugins({"test:path": ("test", PathDefault())})) is None

    from asdbench import plugins as plugin_mod

    broken = metadata.EntryPoint("broken", "asdbench_no_such_module_xyz", "asdbench")
    real = plugin_mod.entry_points()
    for module in (plugin_mod, catalog):
        monkeypatch.setattr(module, "entry_points", lambda: [broken, *real])
    monkeypatch.delenv("ASDBENCH_LOAD_PLUGINS")
    monkeypatch.setenv("ASDBENCH_CACHE", str(tmp_path / "cache"))
    plugin_mod.reset_plugins()
    assert catalog.plugin_catalog().failures  # reported, and not remembered: installing what it lacks mends it
    assert not (tmp_path / "cache" / "plugin-catalog.json").exists()


def test_a_batch_job_gets_plain_epoch_lines_and_json_on_stdout(tracking_uri):
    import json

    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=2",
                                      "--tracking-uri", tracking_uri, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["run_id"]) == 32 and summary["system"] == "dcase-ae" and 0 < summary["metrics"]["auc/avg"] <= 1
    epochs = [line for line in result.stderr.splitlines() if line.startswith("Training fan: ")]
    assert [line.split()[2] for line in epochs] == ["1/2", "2/2", "done,"]  # one line per epoch, then the phase's end
    assert " loss " in epochs[0] and epochs[0].endswith("examples/s") and not any("━" in line for line in epochs)
    quiet = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1",
                                     "--tracking-uri", tracking_uri, "--quiet", "--types", "valve", "--ids", "id_02"])
    assert quiet.exit_code == 0 and "Average" in quiet.stdout
    assert "Training" not in quiet.stderr and "Done in" not in quiet.stderr
    assert "valve" in quiet.stdout and "fan" not in quiet.stdout  # --types: one machine type was trained and scored


def test_help_texts_carry_no_markup_and_data_check_only_its_own_options():
    from asdbench.cli.reference import _contexts

    helps = {ctx.command_path: ctx.command.get_help(ctx) for ctx in _contexts(cli, "asdbench")}
    assert len(helps) == 23  # the group, its 16 commands, and data's (3), config's and cache's subcommands
    for path, text in helps.items():
        assert text.startswith(f"Usage: {path} ") and "`" not in text and ":class:" not in text, path
    check = helps["asdbench data check"]
    assert "--root" in check and "--set" in check
    assert not any(option in check for option in ("--seed", "--device", "--skip-bad-files", "--types"))


def test_the_command_line_reference_in_docs_is_current():
    from pathlib import Path

    from asdbench.cli.reference import reference

    docs = Path(__file__).parents[3] / "docs" / "cli.md"
    assert docs.read_text() == reference(), "docs/cli.md is stale: python -m asdbench.cli.reference > docs/cli.md"


def test_options_of_several_values_take_repeats_and_comma_lists_alike():
    from asdbench.cli.options import several

    assert several(None, None, ("0,1", "2", " 3 , ")) == ["0", "1", "2", "3"]
    from click.testing import CliRunner

    bad = CliRunner().invoke(cli, ["run", "dcase-ae", "--seeds", "1", "--seeds", "1"])
    assert bad.exit_code == 1 and "--seeds expects distinct integers, got '1,1'" in bad.output


def test_a_plugins_command_is_found_when_asked_for(monkeypatch):
    from click.testing import CliRunner

    from asdbench import hookimpl
    from asdbench.plugins import get_plugins

    class Hello:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello-plugin")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    get_plugins().manager.register(Hello())
    monkeypatch.setattr(cli, "_plugins_loaded", False, raising=False)
    result = CliRunner().invoke(cli, ["hello-plugin"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n"
    cli.commands.pop("hello-plugin", None)


def test_tab_completes_systems_and_datasets_from_the_catalog():
    from click.shell_completion import ShellComplete

    complete = ShellComplete(cli, {}, "asdbench", "_ASDBENCH_COMPLETE").get_completions
    assert [c.value for c in complete(["run"], "stgram")] == ["stgram-mfn", "stgram-mfn-cee"]
    assert [c.value for c in complete(["config", "show"], "SUB")] == ["subcluster-adacos"]
    assert [c.value for c in complete(["run", "idnn", "--dataset"], "dcase202")] == [
        f"dcase{year}t2" for year in range(2020, 2027)]
    assert [c.value for c in complete(["compare", "--system"], "noisy")] == ["noisy-arcmix"]
