"""``asdbench compare``: paper-style tables of logged runs, seeds aggregated, best values in bold."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table as RichTable

from asdbench.atomic import write_text
from asdbench.cli.options import complete, several
from asdbench.cli.output import console, err_console
from asdbench.config import parse_assignments
from asdbench.errors import AsdbenchError


@click.command("compare")
@click.option("--dataset", "-d", default=None, help="Only runs on this dataset (required when the store mixes datasets).")
@click.option("--system", "--systems", "systems", multiple=True, callback=several, shell_complete=complete("system"),
              help="Only these systems (repeatable, or comma-separated).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this MLflow tag (repeatable).")
@click.option("--run-id", "run_ids", multiple=True, help="Exactly these runs (repeatable).")
@click.option("--table", "which", default="all", show_default=True, type=click.Choice(["2", "3", "4", "dcase", "pooled", "all"]),
              help="Table 2 (AUC, pAUC), 3 (mAUC) or 4 (AUC, mAUC) of the STgram-MFN paper; dcase: AUC source and "
              "target, pAUC and harmonic mean per type, as the DCASE 2021-2026 results pages (the default for "
              "those data sets); pooled: AUC and pAUC over all IDs of a type at once, as Noisy-ArcMix and OS-SCL "
              "report (not the official metric), with mAUC.")
@click.option("--format", "fmt", default="rich", show_default=True,
              type=click.Choice(["rich", "markdown", "csv", "latex", "json", "html"]),
              help="html: one self-contained page (tables, a heatmap of the AUC per machine ID, bootstrap intervals, "
              "each row's figures), to attach to a paper or a pull request.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (whole or not at all) instead of standard output; not with --format rich.")
@click.option("--reference", type=click.Choice(["paper", "newer"]), default=None,
              help="Add published rows: paper (the STgram-MFN paper's Tables 2-4) or newer (Noisy-ArcMix, OS-SCL: their "
              "AUC and pAUC are pooled per type, so they appear in --table pooled; GenRep and BEATs + LoRA: the DCASE "
              "2023 evaluation set's official score, in the DCASE table's h-mean).")
@click.option("--group-by", "group_by", multiple=True, metavar="KEY",
              help="Pool each system's runs by these config keys only (repeatable; also precision, data), instead of "
              "keeping every non-comparable set of runs in a row of its own.")
@click.option("--ci", is_flag=True, help="Add 95% bootstrap intervals of AUC and mAUC per machine type (test clips "
              "resampled; for rows of several seeds, seeds too).")
@click.option("--paired", nargs=2, default=None, metavar="A B",
              help="Per-ID AUC difference of row A over row B (a system name or a row label), paired bootstrap with "
              "Holm-adjusted p-values. With one seed per row it resamples test clips only, so it measures test-set "
              "noise, not training noise; with several seeds per row it resamples seeds as well.")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --format html: a WAV file whose score over time (and per frame, for frame-based systems) "
              "each row's first model is drawn for (repeatable).")
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def compare_command(dataset, systems, tags, run_ids, which, fmt, out, reference, group_by, ci, paired, clips,
                    tracking_uri) -> None:
    """Compare logged runs side by side: one row per system and comparable set of runs (mean ± std over seeds).

    Runs that differ in anything but the seed and execution-only settings (cache, compile, channels_last, GPU
    index) are separate rows whose label says what differs, e.g. "stgram-mfn (epochs=3)".
    """
    from asdbench.report import compare  # MLflow and NumPy load here: `asdbench compare --help` does not wait for them
    from asdbench.tracking.store import Store

    if out and fmt == "rich":
        raise AsdbenchError("--out writes a file: choose --format markdown, csv, latex, json or html")
    if clips and fmt != "html":
        raise AsdbenchError("--clip draws figures of the HTML page: add --format html")
    store = Store(tracking_uri, create=False)
    runs = compare.load_runs(store, dataset, systems, {k: str(v) for k, v in parse_assignments(tags).items()}, run_ids)
    rows = compare.rows_from_runs(runs, group_by)
    for row in rows:
        if row.repeats:
            err_console.print(f"[yellow]Note:[/yellow] row '{row.label}' counts the latest run of each seed: {row.repeats} "
                              "earlier runs of the same seeds are left out", highlight=False)
        if row.pooled:
            err_console.print(f"[yellow]Note:[/yellow] row '{row.label}' pools runs that differ in "
                              f"{', '.join(row.pooled)} (--group-by)", highlight=False)
    extra, notes = [], []
    versions = compare.version_differences(rows)
    if versions:
        notes.append("The runs were computed with different versions of packages that can move their numbers: "
                      + "; ".join(versions) + ".")
        err_console.print(f"[yellow]Note:[/yellow] {notes[-1]}", highlight=False)
    if reference:
        if reference == "paper" and runs[0].dataset != "dcase2020t2":
            err_console.print(f"[yellow]Note:[/yellow] the published rows are DCASE 2020 Task 2 results; these runs are "
                              f"on '{runs[0].dataset}'.", highlight=False)
        if reference == "newer":
            err_console.print("[yellow]Note:[/yellow] Noisy-ArcMix and OS-SCL pool all IDs of a type into one AUC; "
                              "their rows fill the pooled columns (--table pooled), not the official ones. GenRep "
                              "(beats-knn) and BEATs + LoRA (beats-lora) publish the DCASE 2023 evaluation set's "
                              "official score alone: the h-mean of the DCASE table.", highlight=False)
        rows += compare.reference_rows(source=reference)
    tables = [compare.build_table(w, rows) for w in compare.tables_for(which, rows)]
    if ci or fmt == "html":  # the page shows the intervals where the runs logged their clip scores
        try:
            extra.append(compare.interval_table(store, rows))
        except AsdbenchError as exc:
            if ci:
                raise
            notes.append(f"No bootstrap intervals: {exc}")
    if paired:
        extra.append(compare.paired_table(store, rows, *paired))
    if fmt == "rich":
        _print_rich(tables, extra, rows, runs[0].dataset)
        return
    if fmt == "html":
        from asdbench.report import html

        page = html.Page(runs[0].dataset, store.uri, tables, rows, extra, compare.first_run_figures(store, rows), notes,
                         _clip_figures(store, rows, list(clips)) if clips else {})
        text = html.render(page)
    else:
        text = compare.render(tables, fmt) + "".join(
            "\n" + compare.render_cells(title, head, body, fmt) for title, head, body in extra)
    if out:
        write_text(out, text)
        err_console.print(f"Wrote {out} ({len(text.encode()) / 1024:,.0f} KiB)", highlight=False)
    else:
        click.echo(text, nl=False)


def _print_rich(tables: list, extra: list[tuple[str, list[str], list[list[str]]]], rows: list, dataset: str) -> None:
    """The tables on the terminal, each as wide as the paper's tables need."""
    from asdbench.report import compare

    for table in tables:
        shown = RichTable(title=f"{table.title}, dataset {dataset}")
        shown.add_column("system", no_wrap=True)
        shown.add_column("n", justify="right")
        for column in table.columns:
            shown.add_column(compare.header(column), justify="right")
        for values in compare.cells(table, "rich"):
            shown.add_row(*values)
        Console(width=max(console.width, 30 + 16 * len(table.columns))).print(shown)
    if any(r.oracle for r in rows):
        console.print(f"{compare.ORACLE_MARK} checkpoint selected on the test set (select=oracle): an upper bound.")
    for title, head, body in extra:
        shown = RichTable(title=title)
        for name in head:
            shown.add_column(name, justify="left" if name in ("system", "machine type", "ID") else "right")
        for values in body:
            shown.add_row(*values)
        Console(width=max(console.width, 30 + 16 * len(head))).print(shown)


def _clip_figures(store, rows: list, clips: list[Path]) -> dict[str, tuple[str, list[tuple[str, bytes]]]]:
    """For each row's first run, a figure per chosen clip of where its score comes from: the model's windows over the
    clip (every tenth of its clip length, as ``monitor`` watches) and, for frame-based systems, each frame's score.
    A clip the model cannot watch (another machine, too short) is a note in its caption, not a failure of the page."""
    import tempfile

    from asdbench.serving.model import load_model
    from asdbench.serving.monitor import draw, timeline_of

    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, row in enumerate(r for r in rows if r.runs):
            run_id = row.runs[0].run_id
            model = load_model(run_id, "cpu", store.uri)
            images = []
            for number, clip in enumerate(clips):
                try:
                    windows, events, threshold = timeline_of(model, clip)
                except AsdbenchError as exc:
                    images.append((f"{clip.name}: {exc}", b""))
                    continue
                png = draw(windows, [(e.start, e.end) for e in events], threshold,
                           Path(tmp) / f"{index}-{number}.png", f"{row.label}: {clip.name}")
                images.append((clip.name, png.read_bytes()))
            found[row.label] = (run_id, images)
    return found
