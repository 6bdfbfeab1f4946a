"""``asdbench bench``: every figure present and written as JSON (no timing asserted; ratios are not re-derived
here with the bench's own formulas, which would test nothing)."""

import json
import os

from click.testing import CliRunner

from asdbench.cli import cli


def test_bench_measures_each_system_and_variant_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cache_before = os.environ["ASDBENCH_CACHE"]
    result = CliRunner().invoke(cli, ["bench", "--systems", "dcase-ae,stgram-mfn-cee", "--variants", "eager,plain",
                                      "--clips", "8", "--seconds", "0.5", "--batch-size", "4", "--steps", "1", "--min-seconds", "0", "--epochs", "3",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "e2e/bound" in result.output and "x plain" in result.output
    assert os.environ["ASDBENCH_CACHE"] == cache_before  # the benchmark's own cache is gone with it
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [(r["system"], r["variant"]) for r in rows] == [
        ("dcase-ae", "plain"), ("dcase-ae", "eager"), ("stgram-mfn-cee", "plain"), ("stgram-mfn-cee", "eager")]
    for row in rows:
        for key in ("frontend_clips_per_s", "train_clips_per_s", "bound_train_clips_per_s", "infer_clips_per_s",
                    "peak_memory_mb"):
            assert row[key] > 0, key
        assert row["train_clips"] == 8 and row["epochs_timed"] == 2 and row["batch_size"] == 4
    plain, default = rows[2], rows[3]
    assert (plain["precision"], plain["memory_format"], plain["cache"], plain["read_warm_s"]) == ("fp32", "nchw", False, None)
    assert default["memory_format"] == "channels_last" and default["cache"] and default["read_warm_s"] is not None
    assert "train_speedup_vs_plain" in default and "train_speedup_vs_plain" in plain
    assert report["machine"]["threads"] >= 1 and report["spec"]["clips"] == 8


def test_bench_rejects_an_unknown_variant_in_one_line():
    result = CliRunner().invoke(cli, ["bench", "--systems", "dcase-ae", "--variants", "fastest"])
    assert result.exit_code != 0
    assert "unknown variant(s) fastest; choose from: plain, eager, compiled" in result.output
