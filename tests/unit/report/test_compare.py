"""`asdbench compare` and `--seeds` on a store filled by the real runner on the tiny synthetic set."""

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.report import compare
from asdbench.tracking.store import Store
from asdbench.training.tracked_run import tracked_execute, tracked_seeds


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """dcase-ae with seeds 0 and 1 (a parent and two children), idnn with seed 0."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    plugins = build_plugins()
    tiny = {"dataset.size": "tiny", "epochs": 3}
    cfg = resolve(plugins, "dcase-ae", set_values=tiny)
    dataset = load_dataset(plugins, cfg)
    seeds = tracked_seeds(plugins, make_plan(plugins, cfg, dataset), Reporter(), [0, 1], Store(uri))
    idnn = tracked_execute(plugins, make_plan(plugins, resolve(plugins, "idnn", set_values=tiny), dataset), Reporter(),
                           Store(uri))
    return uri, seeds, idnn


def _fake_run(uri, tags, metrics):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("asdbench/synthetic").experiment_id
    run = client.create_run(exp, tags={"asdbench.role": "run", **tags})
    for k, v in metrics.items():
        client.log_metric(run.info.run_id, k, v)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_seeds_make_a_parent_with_mean_and_std(store):
    uri, seeds, _ = store
    client = MlflowClient(uri)
    parent = client.get_run(seeds.parent_run_id)
    children = [client.get_run(r.run_id) for r in seeds.runs]
    assert all(c.data.tags["mlflow.parentRunId"] == seeds.parent_run_id for c in children)
    assert [c.data.params["seed"] for c in children] == ["0", "1"] and parent.data.params["n_runs"] == "2"
    values = [c.data.metrics["auc/avg"] for c in children]
    assert parent.data.metrics["mean/auc/avg"] == pytest.approx(np.mean(values))
    assert parent.data.metrics["std/auc/avg"] == pytest.approx(np.std(values, ddof=1))


def test_rows_aggregate_seeds_and_match_the_logged_metrics(store):
    uri, seeds, idnn = store
    rows = {r.label: r for r in compare.rows_from_runs(compare.load_runs(Store(uri)))}
    assert set(rows) == {"dcase-ae", "idnn"}  # the parent run is not a row of its own
    assert rows["dcase-ae"].n == 2
    client = MlflowClient(uri)
    for key in ("auc/fan", "pauc/valve", "mauc/avg"):
        values = [client.get_run(r.run_id).data.metrics[key] for r in seeds.runs]
        assert rows["dcase-ae"].mean[key] == pytest.approx(np.mean(values))
        assert rows["dcase-ae"].std[key] == pytest.approx(np.std(values, ddof=1))
    assert rows["idnn"].mean["auc/avg"] == pytest.approx(idnn.result.report.auc)


def test_tables_formats_and_bold_best(store):
    uri, _, idnn = store
    rows = compare.rows_from_runs(compare.load_runs(Store(uri)))
    tables = [compare.build_table(w, rows) for w in ("2", "3", "4")]
    assert [c for c in tables[1].columns] == [("fan", "mauc"), ("valve", "mauc"), ("avg", "mauc")]
    md = compare.render(tables, "markdown")
    assert "| system | n | fan AUC | fan pAUC |" in md and "**" in md and " ± " in md
    best = max(r.mean["auc/avg"] for r in rows)
    assert f"**{100 * best:.2f}" in md
    records = list(csv.DictReader(io.StringIO(compare.render(tables[:1], "csv"))))
    idnn_avg = [r for r in records if r["system"] == "idnn" and r["machine_type"] == "avg" and r["metric"] == "auc"]
    assert float(idnn_avg[0]["mean"]) == pytest.approx(idnn.result.report.auc)
    latex = compare.render(tables, "latex")
    assert latex.count("\\begin{tabular}") == 3 and "\\textbf{" in latex
    data = json.loads(compare.render(tables, "json"))
    idnn_json = next(r for r in data[0]["rows"] if r["system"] == "idnn")
    assert idnn_json["n"] == 1 and idnn_json["values"]["auc/avg"]["mean"] == pytest.approx(idnn.result.report.auc)


def test_reference_rows_are_the_papers_numbers():
    rows = {r.label: r for r in compare.reference_rows()}
    assert len(rows) == 8
    stgram = rows["stgram-mfn (paper)†"]
    assert stgram.mean["auc/fan"] == pytest.approx(0.9404) and stgram.mean["mauc/avg"] == pytest.approx(0.8486)
    assert "pauc/fan" not in rows["tgram-mfn (paper)†"].mean  # Table 4 gives no pAUC: shown as a dash


def test_cli_compare_rich_tables(store):
    uri, _, _ = store
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--dataset", "synthetic"])
    assert result.exit_code == 0, result.output
    for title in ("Table 2 style", "Table 3 style", "Table 4 style"):
        assert title in result.output
    assert "dcase-ae" in result.output and "±" in result.output


def test_cli_compare_marks_oracle_and_missing_metrics(store):
    uri, _, _ = store
    _fake_run(uri, {"asdbench.system": "toy", "asdbench.dataset": "synthetic", "asdbench.select": "oracle"},
              {"auc/fan": 0.99, "auc/avg": 0.99})
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--table", "4", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    toy = next(line for line in result.output.splitlines() if line.startswith("| toy†"))
    assert "**99.00**" in toy and "| - |" in toy  # best fan AUC in bold; no valve AUC: a dash
    assert "checkpoint selected on the test set" in result.output
    only = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--system", "idnn", "--format", "json"])
    assert [r["system"] for r in json.loads(only.output)[0]["rows"]] == ["idnn"]


def test_clear_errors_for_no_runs_and_mixed_datasets(store, tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(empty).client  # a store without runs
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", empty])
    assert result.exit_code == 1 and "no finished asdbench runs match" in result.output
    uri, _, _ = store
    with pytest.raises(AsdbenchError, match="no finished asdbench runs"):
        compare.load_runs(Store(uri), systems=["nope"])
    client = MlflowClient(uri)
    exp = client.create_experiment("asdbench/dcase2020t2")
    run = client.create_run(exp, tags={"asdbench.role": "run", "asdbench.system": "x", "asdbench.dataset": "dcase2020t2"})
    client.set_terminated(run.info.run_id, "FINISHED")
    with pytest.raises(AsdbenchError, match="several datasets"):
        compare.load_runs(Store(uri))
    assert {r.dataset for r in compare.load_runs(Store(uri), dataset="synthetic")} == {"synthetic"}


def test_run_with_seeds_prints_mean_and_std(tracking_uri):
    result = CliRunner().invoke(cli, ["run", "dcase-ae", "--set", "dataset.size=tiny", "--set", "epochs=1",
                                      "--seeds", "3,4", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "mean ± std over 2 runs" in result.output
    bad = CliRunner().invoke(cli, ["run", "dcase-ae", "--seeds", "1,x", "--tracking-uri", tracking_uri])
    assert bad.exit_code == 1 and "--seeds expects" in bad.output


def test_ci_and_paired_from_the_logged_clip_scores(store):
    uri, _, _ = store
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--dataset", "synthetic", "--system", "dcase-ae",
                                      "--system", "idnn", "--table", "3", "--ci", "--paired", "dcase-ae", "idnn",
                                      "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "95% bootstrap intervals" not in result.output  # csv carries no titles, only the rows
    lines = result.output.splitlines()
    ci_head = lines.index("system,fan AUC,fan mAUC,valve AUC,valve mAUC,Average AUC,Average mAUC")
    dcase_row = lines[ci_head + 1].split(",")
    lo, hi = (float(x) for x in dcase_row[5].split("–"))
    rows = {r.label: r for r in compare.rows_from_runs(compare.load_runs(Store(uri), systems=["dcase-ae"]))}
    assert lo <= 100 * rows["dcase-ae"].mean["auc/avg"] <= hi
    assert any(line.startswith("fan,00,") for line in lines)  # a paired row per ID


def test_runs_that_are_not_comparable_are_separate_rows_saying_what_differs(tmp_path):
    """Two seeds of one config pool (the second decoded without the cache: an execution-only key); a run with
    other epochs and one in another precision are rows of their own, labelled by what differs."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plugins = build_plugins()
    base = {"dataset.size": "tiny", "epochs": 1, "precision": "fp32"}
    dataset = load_dataset(plugins, resolve(plugins, "dcase-ae", set_values=base))
    for values in ({}, {"seed": 1, "cache": False}, {"epochs": 2}, {"precision": "bf16"}):
        tracked_execute(plugins, make_plan(plugins, resolve(plugins, "dcase-ae", set_values={**base, **values}), dataset),
                        Reporter(), Store(uri))
    runs = compare.load_runs(Store(uri))
    rows = {r.label: r for r in compare.rows_from_runs(runs)}
    assert {label: r.n for label, r in rows.items()} == {
        "dcase-ae (epochs=1, precision=fp32)": 2, "dcase-ae (epochs=2, precision=fp32)": 1,
        "dcase-ae (epochs=1, precision=bf16)": 1}
    assert all(not r.pooled for r in rows.values())
    pooled = compare.rows_from_runs(runs, group_by=["precision"])
    assert [(r.label, r.n, r.pooled) for r in pooled] == [
        ("dcase-ae (precision=bf16)", 1, []), ("dcase-ae (precision=fp32)", 3, ["epochs"])]
    with pytest.raises(AsdbenchError, match="unknown --group-by key.*epoch\\b"):
        compare.rows_from_runs(runs, group_by=["epoch"])
    with pytest.raises(AsdbenchError, match="system 'dcase-ae' has 3 rows that are not comparable"):
        compare.row_named(compare.rows_from_runs(runs), "dcase-ae")
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--table", "4", "--format", "markdown",
                                      "--paired", "dcase-ae (epochs=1, precision=fp32)", "dcase-ae (epochs=2, precision=fp32)"])
    assert result.exit_code == 0, result.output
    assert "| dcase-ae (epochs=1, precision=fp32) | 2 |" in result.output
    assert "same resampled test clips only (one seed: test-set noise, not training noise)" in result.output
    assert "| Average |  |" in result.output  # the paired row of the average over machine types
    grouped = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--group-by", "precision", "--table", "2"])
    assert grouped.exit_code == 0 and "pools runs that differ in epochs" in grouped.output
    # A run logged before comparability keys pools with no keyed run, and says so.
    _fake_run(uri, {"asdbench.system": "dcase-ae", "asdbench.dataset": "synthetic"}, {"auc/avg": 0.5})
    labels = {r.label: r.n for r in compare.rows_from_runs(compare.load_runs(Store(uri)))}
    assert labels["dcase-ae (logged without a comparability key)"] == 1 and len(labels) == 4


def test_newer_papers_rows_fill_the_pooled_columns_only():
    rows = {r.label: r for r in compare.reference_rows(source="newer")}
    na = rows["noisy-arcmix (paper: AUC/pAUC pooled per type)"]
    assert na.mean["auc_pooled/fan"] == pytest.approx(0.9832) and na.mean["pauc_pooled/avg"] == pytest.approx(0.8931)
    assert na.mean["mauc/ToyConveyor"] == pytest.approx(0.6818) and not any(k.startswith("auc/") for k in na.mean)
    assert not na.oracle  # selected on held-out training clips, not on the test set
    assert rows["os-scl (paper: AUC/pAUC pooled per type)"].mean == pytest.approx(
        {"auc_pooled/avg": 0.9571, "pauc_pooled/avg": 0.9023, "mauc/avg": 0.9123})
    table = compare.build_table("pooled", list(rows.values()))
    assert [c for c in table.columns if c[0] == "avg"] == [("avg", "auc_pooled"), ("avg", "pauc_pooled"), ("avg", "mauc")]
    assert {r.label for r in table.rows} == {"noisy-arcmix (paper: AUC/pAUC pooled per type)",
                                             "os-scl (paper: AUC/pAUC pooled per type)"}  # GenRep has no pooled AUC


def test_the_encoder_papers_official_scores_fill_the_dcase_tables_h_mean_only():
    rows = [r for r in compare.reference_rows(source="newer") if "DCASE 2023 eval" in r.label]
    assert {r.label: r.mean for r in rows} == {
        "beats-knn (paper: DCASE 2023 eval, official score)": {"hmean/avg": pytest.approx(0.7379)},
        "beats-lora (paper: DCASE 2023 eval, official score)": {"hmean/avg": pytest.approx(0.7775)}}
    run = compare.Row("beats-knn", 1, {"auc_source/avg": 0.7, "auc_target/avg": 0.6, "pauc/avg": 0.55,
                                       "hmean/avg": 0.61})
    dcase = compare.build_table("dcase", [run, *rows])
    assert len(dcase.rows) == 3 and dcase.cell(rows[0], ("avg", "hmean")) == (pytest.approx(0.7379), 0.0)
    assert dcase.cell(rows[0], ("avg", "auc_source")) is None
    assert [r.label for r in compare.build_table("2", [run, *rows]).rows] == ["beats-knn"]
    noisy = compare.reference_rows(source="newer")  # the 2020 rows' machine types are not columns of this table
    assert {t for t, _ in compare.build_table("dcase", [run, *noisy]).columns} == {"avg"}


class _Page(__import__("html.parser").parser.HTMLParser):
    """Every table of a page as rows of cell texts (with each cell's style), and every tag with its attributes."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.tags, self._cell = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ["", dict(attrs).get("style", "")]
            self.tables[-1][-1].append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def test_html_report_is_one_self_contained_page(store, tmp_path):
    import base64

    from asdbench.report.html import HIGH, LOW, MIDDLE, colour

    assert (colour(0.0), colour(0.5), colour(1.0), colour(0.75)) == (LOW, MIDDLE, HIGH, (140, 174, 210))
    uri, seeds, idnn = store
    out = tmp_path / "report.html"
    only = ["--tracking-uri", uri, "--dataset", "synthetic", "--system", "dcase-ae,idnn"]  # not other tests' fakes
    result = CliRunner().invoke(cli, ["compare", *only, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = _Page(out.read_text())
    assert not {tag for tag, _ in page.tags} & {"script", "link", "iframe", "object", "embed"}
    sources = [attrs["src"] for tag, attrs in page.tags if "src" in attrs]
    assert not any("href" in attrs for _, attrs in page.tags)  # nothing to fetch: every image is inline
    assert sources and all(base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for s in sources)
    client = MlflowClient(uri)
    logged = sum(1 for run in (seeds.runs[0], idnn) for a in client.list_artifacts(run.run_id, "figures"))
    assert len(sources) == logged  # each row's first run, every figure

    rows = {r.label: r for r in compare.rows_from_runs(compare.load_runs(Store(uri), "synthetic", ["dcase-ae", "idnn"]))}
    table2 = [[text for text, _ in row] for row in page.tables[0]]
    markdown = compare.render([compare.build_table("2", list(rows.values()))], "markdown").splitlines()
    assert table2[1:] == [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in markdown[4:6]]
    heatmap = next(t for t in page.tables if t[0][0][0] == "system" and t[1][0][0] == "id_00")
    assert [c[0] for c in heatmap[1]] == ["id_00", "id_02", "id_00", "id_02"]  # fan's, then valve's
    for line in heatmap[2:]:
        row = rows[line[0][0]]
        for (text, style), unit in zip(line[1:], ("fan/id_00", "fan/id_02", "valve/id_00", "valve/id_02")):
            mean = row.mean[f"auc/{unit}"]
            assert text.startswith(f"{100 * mean:.1f}") and f"rgb({','.join(map(str, colour(mean)))})" in style
    assert {line[0][0] for line in heatmap[2:]} == {"dcase-ae", "idnn"}
    intervals = next(t for t in page.tables if t[0][1][0] == "fan AUC" and "–" in t[1][1][0])
    assert [line[0][0] for line in intervals[1:]] == ["dcase-ae", "idnn"]

    markdown_out = tmp_path / "table.md"
    same = CliRunner().invoke(cli, ["compare", *only, "--format", "markdown", "--table", "3"])
    assert CliRunner().invoke(cli, ["compare", *only, "--format", "markdown", "--table", "3",
                                    "--out", str(markdown_out)]).exit_code == 0
    assert markdown_out.read_text() == same.output
    rich = CliRunner().invoke(cli, ["compare", *only, "--out", str(tmp_path / "x.txt")])
    assert rich.exit_code == 1 and "--out writes a file" in rich.output and not (tmp_path / "x.txt").exists()


def test_html_report_draws_where_a_chosen_clips_score_comes_from(store, tmp_path):
    import base64

    import numpy as np
    import soundfile as sf

    uri, seeds, idnn = store
    long = tmp_path / "fan" / "three_id_00.wav"  # three of the models' 1 s clips long
    long.parent.mkdir()
    sf.write(str(long), np.random.default_rng(0).uniform(-0.2, 0.2, 48000), 16000, subtype="PCM_16")
    other = tmp_path / "pump" / "x_id_07.wav"
    other.parent.mkdir()
    sf.write(str(other), np.zeros(16000, np.int16), 16000, subtype="PCM_16")
    out = tmp_path / "report.html"
    only = ["--tracking-uri", uri, "--dataset", "synthetic", "--system", "dcase-ae,idnn"]
    result = CliRunner().invoke(cli, ["compare", *only, "--format", "html", "--out", str(out), "--clip", str(long),
                                      "--clip", str(other)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    section = text[text.index("Where the score of a chosen clip comes from"):]
    page = _Page(section)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert [i["alt"] for i in images] == ["three_id_00.wav", "three_id_00.wav"]  # one per row: dcase-ae, idnn
    assert all(base64.b64decode(i["src"].split(",", 1)[1])[:4] == b"\x89PNG" for i in images)
    assert section.count("<p class=\"note\">x_id_07.wav: ") == 2 and "no folder on its path names a machine type" in section
    plain = CliRunner().invoke(cli, ["compare", *only, "--clip", str(long)])
    assert plain.exit_code == 1 and "--clip draws figures of the HTML page: add --format html" in plain.output


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    from asdbench.atomic import write_text

    path = tmp_path / "report.html"
    write_text(path, "old page")
    with pytest.raises(TypeError):
        write_text(path, 123)  # fails while writing
    assert path.read_text() == "old page" and [p.name for p in tmp_path.iterdir()] == ["report.html"]
    with pytest.raises(AsdbenchError, match=f"cannot write {path}/x: "):
        write_text(path / "x", "a file is not a folder")


def test_a_run_logs_its_environment(store, tmp_path):
    from importlib import metadata

    uri, seeds, _ = store
    client = MlflowClient(uri)
    run = client.get_run(seeds.runs[0].run_id)
    for name in ("torch", "torchaudio", "numpy", "scikit-learn"):
        assert run.data.tags[f"asdbench.env.{name}"] == metadata.version(name)
    logged = json.loads(open(client.download_artifacts(run.info.run_id, "environment.json", str(tmp_path))).read())
    assert logged["packages"]["mlflow"] == metadata.version("mlflow") and logged["python"].count(".") == 2


def test_compare_says_when_rows_used_other_package_versions(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("asdbench/synthetic")
    metrics = {"auc/fan": 0.8, "auc/avg": 0.8, "pauc/fan": 0.6, "pauc/avg": 0.6, "mauc/fan": 0.7, "mauc/avg": 0.7}
    for system, numpy in (("dcase-ae", "2.4.6"), ("idnn", "2.4.6"), ("stgram-mfn", "2.3.1")):
        _fake_run(uri, {"asdbench.system": system, "asdbench.dataset": "synthetic", "asdbench.env.numpy": numpy,
                        "asdbench.env.torch": "2.11.0"}, metrics)
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--format", "markdown"])
    assert result.exit_code == 0, result.output
    note = " ".join(result.stderr.split())
    assert "different versions of packages that can move their numbers: numpy 2.3.1 (stgram-mfn), 2.4.6 (dcase-ae, idnn)." in note
    assert "torch" not in note  # one version of torch: nothing to say
    same = CliRunner().invoke(cli, ["compare", "--tracking-uri", uri, "--format", "markdown", "--system", "dcase-ae,idnn"])
    assert same.exit_code == 0 and "different versions" not in same.stderr


def test_latex_escapes_what_latex_would_read_as_markup():
    """A name with ``_`` (or &, %, #) used to break the LaTeX table; ±, the oracle mark and bold stay markup."""
    text = compare.render_cells("T", ["system", "fan_x AUC"],
                                [["my_sys (threshold.q=0.5)†", "\\textbf{80.00 ± 1.00}"], ["a&b 50% #1", "70.00"]], "latex")
    assert "system & fan\\_x AUC \\\\" in text
    assert "my\\_sys (threshold.q=0.5)$^\\dagger$ & \\textbf{80.00 $\\pm$ 1.00} \\\\" in text
    assert "a\\&b 50\\% \\#1 & 70.00 \\\\" in text


def test_n_counts_seeds_not_repeated_runs_of_one_seed(tracking_uri):
    """A seed run twice with one config used to count as two runs in n and in the standard deviation."""
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("asdbench/synthetic")
    key = json.dumps({"epochs": "1"})
    for seed, auc in (("0", 0.6), ("0", 0.7), ("1", 0.9)):  # seed 0 twice: the later run (0.7) counts
        run = client.create_run(experiment, tags={"asdbench.system": "toy", "asdbench.dataset": "synthetic",
                                                  "asdbench.comparability": key})
        client.log_param(run.info.run_id, "seed", seed)
        client.log_metric(run.info.run_id, "auc/avg", auc)
        client.set_terminated(run.info.run_id, "FINISHED")
    (row,) = compare.rows_from_runs(compare.load_runs(Store(tracking_uri)))
    assert row.n == 2 and row.repeats == 1 and row.mean["auc/avg"] == pytest.approx(0.8)
    assert row.std["auc/avg"] == pytest.approx(np.std([0.7, 0.9], ddof=1))
    result = CliRunner().invoke(cli, ["compare", "--tracking-uri", tracking_uri, "--format", "json"])
    assert "counts the latest run of each seed: 1 earlier runs of the same seeds are left out" in " ".join(
        result.output.split())
