"""``asdbench compare --format html``: one self-contained page to attach to a paper or a pull request.

The page holds the comparison tables, the per-ID AUC of every row as a heatmap (rows x machine IDs, coloured
from red at 0 through white at chance to blue at 1, the value and its spread in each cell), the bootstrap
intervals, and the figures each row's first run logged (ROC curves, score histograms, t-SNE), embedded as
``data:`` URIs. It loads nothing from the network: no scripts, no style sheets, no fonts, no remote images, so it
displays the same offline, in a mail attachment or in a CI artifact viewer.
"""

from __future__ import annotations

import base64
import datetime
import html
import math
from dataclasses import dataclass, field

from asdbench import __version__
from asdbench.report.compare import ORACLE_MARK, Row, Table, cells, header, value_text

# RdBu's ends and middle: red (0) -> near white (0.5, chance) -> blue (1).
LOW, MIDDLE, HIGH = (178, 24, 43), (247, 247, 247), (33, 102, 172)

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 2em; }
.meta { color: #555; } .note { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.label, th.label { text-align: left; }
.scroll { overflow-x: auto; }
table.heatmap td { min-width: 4.2em; text-align: center; } table.heatmap td.label { text-align: left; }
table.heatmap td small { display: block; font-size: 0.78em; opacity: 0.85; }
.legend { display: inline-block; width: 260px; height: 12px; vertical-align: middle; border: 1px solid #aaa;
          background: linear-gradient(to right, rgb(178,24,43), rgb(247,247,247), rgb(33,102,172)); }
details { margin: 0.5em 0; } summary { cursor: pointer; font-weight: 600; }
figure { display: inline-block; margin: 0.4em; vertical-align: top; }
figure img { max-width: 460px; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
"""


@dataclass
class Page:
    """What the page shows, gathered by the command (the rows and tables of ``compare``, intervals, figures)."""

    dataset: str
    tracking_uri: str
    tables: list[Table]
    rows: list[Row]
    extras: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # intervals, paired
    figures: dict[str, tuple[str, list[tuple[str, bytes]]]] = field(default_factory=dict)  # label -> run, PNGs
    notes: list[str] = field(default_factory=list)
    clip_figures: dict[str, tuple[str, list[tuple[str, bytes]]]] = field(default_factory=dict)  # the chosen clips


def colour(value: float) -> tuple[int, int, int]:
    """The heatmap colour of an AUC: ``LOW`` at 0, ``MIDDLE`` at 0.5, ``HIGH`` at 1, linear between."""
    v = min(max(value, 0.0), 1.0)
    start, end, t = (LOW, MIDDLE, v / 0.5) if v < 0.5 else (MIDDLE, HIGH, (v - 0.5) / 0.5)
    return tuple(round(a + (b - a) * t) for a, b in zip(start, end))


def unit_name(columns: list[tuple[str, str]]) -> str:
    """What the heatmap's columns are: DCASE 2020's machine IDs, or the sections of the later releases."""
    return "section" if columns and all(u.startswith("section_") for _, u in columns) else "machine ID"


def id_columns(rows: list[Row]) -> list[tuple[str, str]]:
    """(machine type, unit) of every per-ID AUC the rows hold (``auc/fan/id_00``, ``auc/fan/section_00``)."""
    keys = {tuple(k.split("/")[1:]) for r in rows for k in r.mean if k.startswith("auc/") and k.count("/") == 2}
    return sorted(keys)


def _cell(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(header(c))}</th>" for c in table.columns)
    body = ["<tr>" + _cell(html.escape(label), "label") + "".join(_cell(v) for v in values) + "</tr>"
            for label, *values in cells(table, "html")]  # the other formats' cells: n, values, best in bold
    return (f'<div class="scroll"><table><caption class="note">{html.escape(table.title)}</caption>'
            f'<thead><tr><th class="label">system</th><th>n</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def heatmap_html(rows: list[Row]) -> str:
    columns = id_columns(rows)
    shown = [r for r in rows if any(f"auc/{t}/{u}" in r.mean for t, u in columns)]
    if not shown:
        return '<p class="note">No per-ID AUC in these rows.</p>'
    types = list(dict.fromkeys(t for t, _ in columns))
    top = "".join(f'<th colspan="{sum(1 for c in columns if c[0] == t)}">{html.escape(t)}</th>' for t in types)
    units = "".join(f"<th>{html.escape(u)}</th>" for _, u in columns)
    body = []
    for row in shown:
        line = [_cell(html.escape(row.label), "label")]
        for t, u in columns:
            key = f"auc/{t}/{u}"
            if key not in row.mean or math.isnan(row.mean[key]):
                line.append(_cell("-"))
                continue
            mean, std = row.mean[key], row.std.get(key, 0.0)
            r, g, b = colour(mean)
            ink = "#fff" if abs(mean - 0.5) > 0.3 else "#222"
            spread = f"<small>± {100 * std:.2f}</small>" if row.n > 1 else ""
            text = value_text((mean, std), row.n, False, "html")
            title = html.escape(f"{row.label}, {t} {u}: AUC {text} % (n = {row.n})", quote=True)
            line.append(f'<td style="background: rgb({r},{g},{b}); color: {ink}" title="{title}">'
                         f"{100 * mean:.1f}{spread}</td>")
        body.append(f"<tr>{''.join(line)}</tr>")
    return (f'<div class="scroll"><table class="heatmap"><thead><tr><th class="label" rowspan="2">system</th>{top}</tr>'
            f"<tr>{units}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
            f'<p class="note">AUC (%) per {unit_name(columns)}, mean over a row\'s runs (± std under it where n &gt; 1). '
            '0 <span class="legend"></span> 100, white at 50 (chance).</p>')


def extra_html(title: str, head: list[str], body: list[list[str]]) -> str:
    heads = "".join(f"<th class=\"label\">{html.escape(h)}</th>" if i == 0 else f"<th>{html.escape(h)}</th>"
                    for i, h in enumerate(head))
    rows = "".join("<tr>" + "".join(_cell(html.escape(v), "label" if i == 0 else "") for i, v in enumerate(r)) + "</tr>"
                   for r in body)
    return (f'<h2>{html.escape(title)}</h2><div class="scroll"><table><thead><tr>{heads}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def figures_html(figures: dict[str, tuple[str, list[tuple[str, bytes]]]]) -> str:
    parts = []
    for index, (label, (run_id, images)) in enumerate(figures.items()):
        items = "".join(
            f'<figure><img alt="{html.escape(name, quote=True)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}"><figcaption>{html.escape(name)}</figcaption>'
            f"</figure>" if data else f'<p class="note">{html.escape(name)}</p>' for name, data in images)
        parts.append(f"<details{' open' if index == 0 else ''}><summary>{html.escape(label)} <span class=\"note\">(run {html.escape(run_id)})</span>"
                     f"</summary>{items or '<p class=note>This run logged no figures.</p>'}</details>")
    return "".join(parts)


def render(page: Page) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs = sum(len(r.runs) for r in page.rows)
    sections = [
        f"<h1>asdbench comparison: {html.escape(page.dataset)}</h1>",
        f'<p class="meta">{len([r for r in page.rows if not r.reference])} rows from {runs} runs of '
        f"{html.escape(page.tracking_uri)}; asdbench {html.escape(__version__)}, {when}.</p>",
        *[f'<p class="note">{html.escape(note)}</p>' for note in page.notes],
        "<h2>Tables</h2>", *[table_html(t) for t in page.tables],
    ]
    if any(r.oracle for r in page.rows):
        sections.append(f'<p class="note">{ORACLE_MARK} checkpoint selected on the test set (select=oracle): an upper '
                        "bound.</p>")
    sections += [f"<h2>AUC per {unit_name(id_columns(page.rows))}</h2>", heatmap_html(page.rows)]
    sections += [extra_html(*extra) for extra in page.extras]
    if page.figures:
        sections += ["<h2>Figures of each row's first run</h2>", figures_html(page.figures)]
    if page.clip_figures:
        sections += ["<h2>Where the score of a chosen clip comes from</h2><p class=\"note\">Each row's first model "
                     "over the clip, a window every tenth of its clip length (and each frame's score, for frame-based "
                     "systems), as <code>asdbench monitor</code> watches a recording.</p>", figures_html(page.clip_figures)]
    sections.append("<h2>Runs</h2><ul>" + "".join(
        f"<li>{html.escape(r.label)}: {', '.join(html.escape(run.run_id) for run in r.runs)}</li>"
        for r in page.rows if r.runs) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>asdbench comparison: {html.escape(page.dataset)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(sections)}</body></html>\n")

