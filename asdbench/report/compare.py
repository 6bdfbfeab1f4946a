"""Paper-style comparison tables from logged runs: one row per system, seeds aggregated as mean ± std.

Runs are read back from MLflow (the runs ``asdbench run`` logged; the parent runs of
``--seeds`` are skipped, their children counted). Runs form one row only when they are
comparable: same system and the same comparability key (:mod:`asdbench.tracking.comparability`:
the resolved config without the seed and execution-only keys, the resolved precision, the
data fingerprint). Runs of one system that differ in anything else are separate rows whose
label says what differs (``stgram-mfn (epochs=3)``); ``group_by`` pools on chosen keys
instead, and the rows say what their runs still differ in. Several seeds are never silently
picked: a row shows their mean, standard deviation and number. Rows whose checkpoint was
selected on the test set (``select=oracle``) are marked.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asdbench.errors import AsdbenchError
from asdbench.evaluation.results import COLUMN_NAMES, TABLE_KEYS, read_clip_scores
from asdbench.evaluation.summary import aggregate, mean_std_text
from asdbench.report.published import data_sets, row_of
from asdbench.report.uncertainty import N_BOOT, SEED, IdScores, paired, replicate_aucs, type_intervals
from asdbench.tracking.comparability import TAG, describe_difference
from asdbench.tracking.store import ENV_TAG, Store

# (title, [(column label, metric)]) per paper table: metric names as logged, per type.
TABLES = {
    "2": ("Table 2 style: AUC and pAUC (%)", ("auc", "pauc")),
    "3": ("Table 3 style: mAUC (%)", ("mauc",)),
    "4": ("Table 4 style: AUC and mAUC (%)", ("auc", "mauc")),
    "pooled": ("AUC and pAUC pooled per machine type (Noisy-ArcMix, OS-SCL style; not the official per-ID mean), "
               "and mAUC (%)", ("auc_pooled", "pauc_pooled", "mauc")),
}
ORACLE_MARK = "†"
METRIC_NAMES = COLUMN_NAMES  # auc -> AUC, auc_source -> AUC source, hmean -> h-mean...
DCASE_TITLE = "DCASE results style: AUC per domain, pAUC, harmonic mean (%)"


def tables_for(which: str, rows: list[Row]) -> list[str]:
    """``all``: the paper's tables 2-4 for DCASE 2020-style runs; the per-domain table (DCASE 2021-2026 results
    pages) for runs of data sets scored by section and domain."""
    if which != "all":
        return [which]
    return ["dcase"] if any("hmean/avg" in r.mean for r in rows) else ["2", "3", "4"]


@dataclass(frozen=True)
class Run:
    run_id: str
    system: str
    dataset: str
    select: str
    metrics: dict[str, float]
    key: dict[str, str] = field(default_factory=dict)  # the comparability key, values as JSON text
    packages: dict[str, str] = field(default_factory=dict)  # versions of the numeric packages, where logged
    seed: str = ""  # as logged; a run logged without one stands for a seed of its own
    start_time: int = 0


# The key of runs logged before comparability keys existed: they pool only with each other.
UNKEYED = {"logged_by": json.dumps("an asdbench without comparability keys")}


@dataclass
class Row:
    label: str
    n: int
    mean: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    oracle: bool = False
    reference: bool = False
    runs: list[Run] = field(default_factory=list)
    pooled: list[str] = field(default_factory=list)  # keys in which the pooled runs differ (only with group_by)
    repeats: int = 0  # runs left out: earlier runs of a seed the row has a later run of


def load_runs(
    store: Store,
    dataset: str | None = None,
    systems: Iterable[str] = (),
    tags: dict[str, str] | None = None,
    run_ids: Iterable[str] = (),
) -> list[Run]:
    """Finished runs of ``asdbench run`` in the store, filtered; a clear error when none match."""
    if run_ids:
        found = [r for r in map(store.run, run_ids)
                 if "asdbench.system" in r.data.tags and r.data.tags.get("asdbench.role", "run") == "run"]
    else:
        found = store.runs("attributes.status = 'FINISHED'")
    wanted = set(systems)
    runs = []
    for r in found:
        t = r.data.tags
        if dataset and t.get("asdbench.dataset") != dataset:
            continue
        if wanted and t["asdbench.system"] not in wanted:
            continue
        if any(t.get(k) != v for k, v in (tags or {}).items()):
            continue
        key = json.loads(t[TAG]) if TAG in t else UNKEYED
        packages = {k.removeprefix(ENV_TAG): v for k, v in t.items() if k.startswith(ENV_TAG)}
        runs.append(Run(r.info.run_id, t["asdbench.system"], t.get("asdbench.dataset", "?"), t.get("asdbench.select", "last"),
                        dict(r.data.metrics), key, packages, r.data.params.get("seed", ""), r.info.start_time or 0))
    if not runs:
        raise AsdbenchError(f"no finished asdbench runs match in {store.uri}; run `asdbench run SYSTEM` first or loosen the filters")
    datasets = sorted({r.dataset for r in runs})
    if len(datasets) > 1:
        raise AsdbenchError(f"the runs are of several datasets ({', '.join(datasets)}): choose one with --dataset")
    return runs



def rows_from_runs(runs: list[Run], group_by: Iterable[str] = ()) -> list[Row]:
    """One row per system and comparability key, or per system, selection rule and ``group_by`` keys."""
    group_by = list(group_by)
    known = {k for r in runs for k in r.key}
    unknown = [k for k in group_by if k not in known]
    if unknown:
        raise AsdbenchError(f"unknown --group-by key(s) {', '.join(unknown)}; the runs' keys: {', '.join(sorted(known))}")

    def key_of(run: Run) -> tuple[tuple[str, str | None], ...]:
        if group_by:
            return tuple((k, run.key.get(k)) for k in group_by)
        return tuple(sorted(run.key.items()))

    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.system, run.select, key_of(run)), []).append(run)
    rows = []
    for (system, select, key), members in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], str(item[0][2]))):
        values = dict(key)
        siblings = [dict(k) for (s, _, k) in groups if s == system and dict(k) != UNKEYED]
        differing = sorted(k for k in {k for sib in siblings for k in sib}
                           if k != "select" and len({sib.get(k) for sib in siblings}) > 1)
        if values == UNKEYED:
            detail = " (logged without a comparability key)" if len(siblings) else ""
        else:
            # a key this row lacks (a parameter of another row's component) says nothing once another key differs
            shown = [k for k in differing if k in values] or differing
            detail = f" ({', '.join(describe_difference(k, values.get(k)) for k in shown)})" if shown else ""
        kept = _one_per_seed(members)
        mean, std = aggregate([m.metrics for m in kept])
        oracle = select == "oracle"
        pooled = sorted(k for k in {k for m in kept for k in m.key} if len({m.key.get(k) for m in kept}) > 1)
        rows.append(Row(system + (ORACLE_MARK if oracle else "") + detail, len(kept), mean, std, oracle,
                        runs=kept, pooled=pooled, repeats=len(members) - len(kept)))
    return rows


def _one_per_seed(runs: list[Run]) -> list[Run]:
    """The latest run of each seed and comparability key: n counts seeds, and a seed run twice with one config (a
    repeated command) is not two samples of training noise. Runs pooled across keys (``group_by``) stay apart."""
    latest: dict[tuple, Run] = {}
    for run in sorted(runs, key=lambda r: (r.start_time, r.run_id)):
        latest[(run.seed or run.run_id, tuple(sorted(run.key.items())))] = run
    return sorted(latest.values(), key=lambda r: (r.start_time, r.run_id))


def version_differences(rows: list[Row]) -> list[str]:
    """The numeric packages logged with different versions by the runs of ``rows``, each with the rows of each
    version: ``numpy 2.3.1 (stgram-mfn), 2.4.6 (dcase-ae, idnn)``. Runs logged by an asdbench that did not record
    versions count for none."""
    found: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        for run in row.runs:
            for name, value in run.packages.items():
                labels = found.setdefault(name, {}).setdefault(value, [])
                if row.label not in labels:
                    labels.append(row.label)
    return [f"{name} " + ", ".join(f"{value} ({', '.join(labels)})" for value, labels in sorted(by_version.items()))
            for name, by_version in sorted(found.items()) if len(by_version) > 1]


def reference_rows(systems: Iterable[str] | None = None, source: str = "paper") -> list[Row]:
    """Published rows (fractions, as our metrics) of ``source`` (:func:`asdbench.report.published.data_sets`), for the
    systems asked or all of them; each value under the metric it is (the newer papers' pooled AUC as ``auc_pooled``)."""
    asked = list(systems) if systems else None  # read once per data set
    rows = []
    for data_set in data_sets(source):
        rows += _reference_rows(data_set, asked)
    return rows


def _reference_rows(data_set: dict, systems: list[str] | None) -> list[Row]:
    names = [s for s in systems if s in data_set["systems"]] if systems else list(data_set["systems"])
    metric = data_set.get("metrics", {})
    oracle = data_set.get("select") == "oracle"
    note = data_set.get("label_note", "paper")
    rows = []
    for name in names:
        mean = {}
        for mtype, values in row_of(data_set, name).items():
            key = "avg" if mtype == "Average" else mtype
            mean.update({f"{metric.get(m, m)}/{key}": v / 100 for m, v in values.items() if v is not None})
        rows.append(Row(f"{name} ({note}){ORACLE_MARK if oracle else ''}", 0, mean, oracle=oracle, reference=True))
    return rows


def machine_types(rows: list[Row]) -> list[str]:
    types = {k.split("/")[1] for r in rows for k in r.mean if k.count("/") == 1 and k.split("/")[0] in METRIC_NAMES}
    return sorted(types - {"avg"}) + ["avg"]


@dataclass(frozen=True)
class Table:
    """A rendered-agnostic table: header cells, and per row the label, n and (mean, std) per column."""

    title: str
    columns: list[tuple[str, str]]  # (machine type, metric)
    rows: list[Row]

    def cell(self, row: Row, column: tuple[str, str]) -> tuple[float, float] | None:
        key = f"{column[1]}/{column[0]}"
        if key not in row.mean:
            return None
        return row.mean[key], row.std.get(key, 0.0)

    def best(self, column: tuple[str, str]) -> float | None:
        values = [c[0] for r in self.rows if (c := self.cell(r, column)) is not None and not math.isnan(c[0])]
        return max(values) if values else None


def build_table(which: str, rows: list[Row]) -> Table:
    if which == "dcase":  # the 2021 evaluator's pAUC is per domain; from 2022 one pAUC per section
        rule = "dcase2021" if any("pauc_source/avg" in r.mean for r in rows) else "dcase2022"
        title, metrics = DCASE_TITLE, TABLE_KEYS[rule]
    else:
        title, metrics = TABLES[which]
    # a published row of another protocol (the newer papers: pooled AUC, or the official score alone) has no value
    # in this table: it is left out of it, and its machine types out of the columns, rather than shown as dashes
    shown = [r for r in rows if not r.reference or any(k.split("/")[0] in metrics for k in r.mean)]
    return Table(title, [(t, m) for t in machine_types(shown) for m in metrics], shown)


def value_text(value: tuple[float, float] | None, n: int, bold: bool, fmt: str) -> str:
    """A mean (± std where n > 1) in %, bold in ``fmt``'s markup; a dash for a missing value."""
    if value is None:
        return "-"
    text = mean_std_text(*value, n)
    if not bold:
        return text
    return {"markdown": f"**{text}**", "latex": f"\\textbf{{{text}}}", "rich": f"[bold]{text}[/bold]",
            "html": f"<strong>{text}</strong>"}.get(fmt, text)


def header(column: tuple[str, str]) -> str:
    mtype, metric = column
    return f"{'Average' if mtype == 'avg' else mtype} {METRIC_NAMES[metric]}"


def cells(table: Table, fmt: str) -> list[list[str]]:
    """Rows of display strings: system, n, then one per column with the best value per column in bold."""
    best = {c: table.best(c) for c in table.columns}
    out = []
    for row in table.rows:
        values = [table.cell(row, c) for c in table.columns]
        out.append([row.label, str(row.n) if not row.reference else "paper"] + [
            value_text(v, row.n, v is not None and best[c] is not None and v[0] == best[c], fmt) for v, c in zip(values, table.columns)
        ])
    return out


def render(tables: list[Table], fmt: str) -> str:
    """markdown, csv, latex or json text of the tables (rich rendering lives in the CLI)."""
    if fmt == "json":
        return json.dumps([
            {"title": t.title, "rows": [
                {"system": r.label, "n": r.n, "oracle": r.oracle, "reference": r.reference,
                 "values": {f"{m}/{mt}": {"mean": c[0], "std": c[1]} for (mt, m) in t.columns
                            if (c := t.cell(r, (mt, m))) is not None}}
                for r in t.rows]}
            for t in tables], indent=2) + "\n"
    parts = []
    for t in tables:
        head = ["system", "n"] + [header(c) for c in t.columns]
        body = cells(t, fmt)
        if fmt in ("markdown", "latex"):
            lines = [render_cells(t.title, head, body, fmt).rstrip("\n")]
        elif fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["table", "system", "n", "machine_type", "metric", "mean", "std"])
            for r in t.rows:
                for column in t.columns:
                    c = t.cell(r, column)
                    writer.writerow([t.title, r.label, r.n, column[0], column[1],
                                     "" if c is None else c[0], "" if c is None else c[1]])
            lines = [buf.getvalue().rstrip("\n")]
        else:
            raise AsdbenchError(f"unknown format '{fmt}'")
        parts.append("\n".join(lines))
    footnote = f"{ORACLE_MARK} checkpoint selected on the test set (select=oracle): an upper bound."
    if fmt in ("markdown", "latex") and any(r.oracle for t in tables for r in t.rows):
        parts.append(footnote if fmt == "markdown" else f"% {footnote}")
    return "\n\n".join(parts) + "\n"


def load_id_scores(store: Store, row: Row) -> list[IdScores]:
    """The labelled per-clip scores of the runs of ``row`` (its seeds), aligned clip by clip across runs."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in row.runs:
            path = store.download(run.run_id, "clip_scores.csv", tmp,
                                  f"run {run.run_id} ({run.system}) has no clip_scores.csv artifact; it was logged by an "
                                  "older asdbench, so no interval can be computed")
            tables.append(read_clip_scores(path))
    keys = [(r["machine_type"], r["machine_id"], r["file"]) for r in tables[0]]
    if any([(r["machine_type"], r["machine_id"], r["file"]) for r in t] != keys for t in tables[1:]):
        raise AsdbenchError(f"the runs of {row.label} scored different test clips; compare runs of one dataset")
    out = []
    for mtype, mid in sorted({k[:2] for k in keys}):
        rows = [i for i, k in enumerate(keys) if k[:2] == (mtype, mid)]
        labels = np.array([int(tables[0][i]["label"]) for i in rows])
        scores = np.array([[float(t[i]["score"]) for i in rows] for t in tables])
        if 0 < labels.sum() < len(labels):
            out.append(IdScores(mtype, mid, labels, scores))
    return out


def first_run_figures(store: Store, rows: list[Row]) -> dict[str, tuple[str, list[tuple[str, bytes]]]]:
    """The PNG figures (``figures/``) of each row's first run, by row label: what the HTML page embeds."""
    client = store.client
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, row in enumerate(r for r in rows if r.runs):
            run_id = row.runs[0].run_id
            names = [a.path for a in client.list_artifacts(run_id, "figures") if a.path.endswith(".png")]
            images = []
            for name in sorted(names):
                local = Path(client.download_artifacts(run_id, name, f"{tmp}/{index}"))
                images.append((Path(name).name, local.read_bytes()))
            found[row.label] = (run_id, images)
    return found


def row_named(rows: list[Row], name: str) -> Row:
    """The row ``name`` designates: its exact label, or a system name that has a single row."""
    exact = [r for r in rows if not r.reference and r.label == name]
    by_system = [r for r in rows if not r.reference and r.runs and r.runs[0].system == name]
    if exact or len(by_system) == 1:
        return (exact or by_system)[0]
    if not by_system:
        raise AsdbenchError(f"no row '{name}' among the matching runs; rows: {', '.join(r.label for r in rows if not r.reference)}")
    raise AsdbenchError(f"system '{name}' has {len(by_system)} rows that are not comparable; name one by its label: "
                        + "; ".join(f"'{r.label}'" for r in by_system))


LATEX_SPECIAL = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
                 "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"}


def _latex(cell: str) -> str:
    """A display string as LaTeX: its special characters escaped (a system or key name with ``_`` broke the
    table), ± and the oracle mark as math, bold kept."""
    bold = cell.startswith("\\textbf{") and cell.endswith("}")
    text = cell[len("\\textbf{"):-1] if bold else cell
    text = "".join(LATEX_SPECIAL.get(ch, ch) for ch in text).replace("±", "$\\pm$").replace("†", "$^\\dagger$")
    return f"\\textbf{{{text}}}" if bold else text


def render_cells(title: str, head: list[str], body: list[list[str]], fmt: str) -> str:
    """A table of display strings as markdown, csv, latex or json."""
    if fmt == "json":
        return json.dumps({"title": title, "rows": [dict(zip(head, row)) for row in body]}, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows([head, *body])
        return buf.getvalue()
    if fmt == "latex":
        rows = [" & ".join(map(_latex, row)) + " \\\\" for row in body]
        lines = [f"% {title}", "\\begin{tabular}{l" + "r" * (len(head) - 1) + "}", "\\toprule",
                 " & ".join(map(_latex, head)) + " \\\\", "\\midrule", *rows, "\\bottomrule", "\\end{tabular}"]
        return "\n".join(lines) + "\n"
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in body]]
    return "\n".join(lines) + "\n"


def interval_table(store: Store, rows: list[Row]) -> tuple[str, list[str], list[list[str]]]:
    """95 % bootstrap intervals of AUC and mAUC per machine type, one row per table row."""
    body, types = [], None
    for row in rows:
        if row.reference:
            continue
        intervals = type_intervals(replicate_aucs(load_id_scores(store, row)))
        types = types or [t for t in sorted(intervals) if t != "avg"] + ["avg"]
        body.append([row.label] + [f"{100 * intervals[t][m][0]:.2f}–{100 * intervals[t][m][1]:.2f}" if t in intervals else "-"
                                   for t in types for m in ("auc", "mauc")])
    head = ["system"] + [f"{'Average' if t == 'avg' else t} {METRIC_NAMES[m]}" for t in types for m in ("auc", "mauc")]
    return (f"95% bootstrap intervals ({N_BOOT} replicates, clips resampled within each ID, and seeds resampled for "
            f"rows of several seeds; seed {SEED})", head, body)


def paired_table(store: Store, rows: list[Row], a: str, b: str) -> tuple[str, list[str], list[list[str]]]:
    row_a, row_b = row_named(rows, a), row_named(rows, b)
    diffs = paired(load_id_scores(store, row_a), load_id_scores(store, row_b))
    if not diffs:
        raise AsdbenchError(f"'{a}' and '{b}' share no labelled test clips to compare")
    body = [[d.machine_type, d.machine_id, f"{100 * d.difference:+.2f}", f"{100 * d.low:+.2f} to {100 * d.high:+.2f}",
             f"{d.p_value:.3f}", "" if d.p_holm is None else f"{d.p_holm:.3f}"] for d in diffs]
    head = ["machine type", "ID", f"AUC {row_a.label} − {row_b.label} (points)", "95% interval", "p (two-sided)",
            "p (Holm, over IDs)"]
    resampled = "test clips and seeds" if min(row_a.n, row_b.n) > 1 else "test clips only (one seed: test-set noise, not training noise)"
    return (f"Paired bootstrap: {row_a.label} vs {row_b.label}, the same resampled {resampled} ({N_BOOT} replicates, "
            f"seed {SEED})", head, body)
