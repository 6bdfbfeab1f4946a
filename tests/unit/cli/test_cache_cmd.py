"""``asdbench cache``: sizes per part; clearing removes what runs make again, checkpoints only when named."""

import json

from click.testing import CliRunner

from asdbench.cache import cache_dir
from asdbench.cli import cli


def _fill(part: str, name: str, size: int) -> None:
    folder = cache_dir() / part / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "array.bin").write_bytes(b"\0" * size)


def test_cache_info_and_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("ASDBENCH_CACHE", str(tmp_path / "cache"))
    _fill("waves", "a", 2**20)
    _fill("features", "b", 2**19)
    _fill("runs", "r1", 2**10)
    info = CliRunner().invoke(cli, ["cache", "info"])
    assert info.exit_code == 0, info.output
    assert "1.0 MB" in info.output and "0.5 MB" in info.output and "1.5 MB" in info.output
    listed = json.loads(CliRunner().invoke(cli, ["cache", "info", "--json"]).output)
    assert {p: (v["entries"], v["bytes"]) for p, v in listed["parts"].items()} == {
        "waves": (1, 2**20), "features": (1, 2**19), "synthetic": (0, 0), "runs": (1, 2**10)}
    assert listed["total_bytes"] == 2**20 + 2**19 + 2**10 and listed["root"] == str(tmp_path / "cache")
    assert listed["datasets"] == {"unknown": {"waves": 2**20, "features": 2**19}}  # entries without a label

    cleared = CliRunner().invoke(cli, ["cache", "clear"])
    assert cleared.exit_code == 0 and "Cleared waves: 1.0 MB" in cleared.output
    assert not (cache_dir() / "waves").exists() and not (cache_dir() / "features").exists()
    assert (cache_dir() / "runs" / "r1").exists()  # checkpoints stay unless named

    refused = CliRunner().invoke(cli, ["cache", "clear", "runs"], input="n\n")
    assert refused.exit_code == 1 and "checkpoints of 1 unfinished runs" in refused.output
    assert (cache_dir() / "runs" / "r1").exists()  # asked, and answered no
    confirmed = CliRunner().invoke(cli, ["cache", "clear", "runs"], input="y\n")
    assert confirmed.exit_code == 0 and not (cache_dir() / "runs").exists()
    _fill("runs", "r2", 2**10)
    assert CliRunner().invoke(cli, ["cache", "clear", "all", "--yes"]).exit_code == 0  # --yes: no question
    assert not (cache_dir() / "runs").exists()
    bad = CliRunner().invoke(cli, ["cache", "clear", "everything"])
    assert bad.exit_code == 2 and "Invalid value" in bad.output


def test_cache_info_says_how_much_each_data_set_takes(monkeypatch, tmp_path):
    """A run labels its entries with its data set: tiny synthetic dcase-ae on fan, 44 clips of 1 s: int16 waves and
    32 x 128 float32 log-mel frames per clip (the run announced the same figures before it read)."""
    monkeypatch.setenv("ASDBENCH_CACHE", str(tmp_path / "cache"))
    ran = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1", "--types", "fan",
                                   "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert ran.exit_code == 0, ran.output
    listed = json.loads(CliRunner().invoke(cli, ["cache", "info", "--json"]).output)
    datasets = listed["datasets"]
    assert set(datasets) == {"synthetic"}
    sizes = datasets["synthetic"]
    assert sizes["waves"] - 44 * 16000 * 2 < 8192 and sizes["features"] - 44 * 32 * 128 * 4 < 8192  # + lengths, labels
    shown = CliRunner().invoke(cli, ["cache", "info"])
    assert "│ synthetic │ 1.3 MB │   0.7 MB │" in shown.output

