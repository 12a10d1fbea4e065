"""`molebench report`: one self-contained static HTML page (no network: figures inlined as SVG, thumbnails as
base64 PNG), and every figure also as SVG and PNG files in a folder beside the page, for papers.

Sections: the runs with their settings (each with its colour), the models × metrics overview, per benchmark the
means with CIs and the forest plot of Δ vs the reference, the comparison tables (same statistics as `compare`)
each with its score distributions, and per benchmark a grid of the best- and worst-scored prompts (by the mean over
all runs) showing every run's image for the same prompt and seed; with `--study`, which metric agrees with that
study's votes (report/study_section.py), and per run the faces and hands its detector found
(molebench.report.people_html). Runs are looked up by (benchmark, label).
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pathlib import Path

import pandas as pd
from PIL import Image

from molebench import __version__
from molebench.atomic import atomic_write_bytes, atomic_write_text
from molebench.report import formats, people_html
from molebench.report import overview as overview_table
from molebench.report.compare import Comparison, MetricTable
from molebench.report.figures import FigureSpec, RunIndex, benchmark_figures, distribution_figure
from molebench.report.images import png_data_uri
from molebench.report.plots import inline_svg
from molebench.report.runs import PAIR_KEYS, LoadedRun, shared_pairs
from molebench.report.study_section import agreement_section

THUMB = 160
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;padding:0 2rem;color:#222;
max-width:1400px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
table.runs{width:100%}table.runs td,table.runs th{text-align:left;overflow-wrap:anywhere;font-size:.78rem}
table.runs td:first-child{white-space:nowrap}
tr.better td{background:#e8f6e8}tr.worse td{background:#fbe9e9}
tr.reference td{font-weight:600}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:baseline}
.note{color:#555;font-size:.8rem}.warn{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem;margin:1rem 0}
.scroll{overflow-x:auto}
figure.plot{margin:1rem 0;width:100%}figure.plot svg{display:block;width:100%;height:auto}
figure.plot figcaption{font-size:.8rem;color:#555}
table.grid td{vertical-align:top;text-align:center}table.grid td.prompt{text-align:left;max-width:18rem}
img.thumb{width:160px;height:auto;image-rendering:auto;display:block;margin:auto}
table.agreement td:nth-child(-n+3),table.agreement th:nth-child(-n+3){text-align:left}
"""


def figures_dir(out: str | Path) -> Path:
    """Where the SVG and PNG files of a report's figures go: `report.html` -> `report_figures/`."""
    out = Path(out)
    return out.with_name(f"{out.stem}_figures")


def write_report(runs: list[LoadedRun], comparison: Comparison, out: str | Path, top_k: int = 3,
                 grid_metric: str | None = None, study=None, agreement: list[Path] | None = None) -> Path:
    """Write the page and its figure files (atomically, each); returns the figures folder. `study`: a
    report.study_view.StudyView shown after the tables; `agreement`: study databases whose metric-agreement
    sections (molebench.study.agreement) follow it."""
    out = Path(out)
    folder = figures_dir(out)
    page, figures = render_page(runs, comparison, top_k, grid_metric, folder.name)
    if study is not None:
        from molebench.report.study_view import html

        page = page.replace("</body></html>", html(study) + "</body></html>")
    for path in agreement or ():
        page, figures = _with_study(page, figures, path, comparison, folder.name)
    for spec in figures:
        atomic_write_text(folder / f"{spec.rendered.name}.svg", spec.rendered.svg)
        atomic_write_bytes(folder / f"{spec.rendered.name}.png", spec.rendered.png)
    atomic_write_text(out, page)
    return folder


def render_page(runs: list[LoadedRun], comparison: Comparison, top_k: int, grid_metric: str | None,
                folder: str) -> tuple[str, list[FigureSpec]]:
    index = RunIndex(runs, comparison)
    figures: list[FigureSpec] = []
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>molebench report</title>"
             f"<style>{CSS}{people_html.CSS}</style></head><body>",
             "<h1>molebench report</h1>",
             f"<p class='note'>generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by "
             f"molebench {escape(__version__)}; figures as SVG and PNG in <code>{escape(folder)}/</code></p>",
             _runs_section(comparison, index)]
    if comparison.warnings:
        parts.append("<div class='warn' id='setting-differences'><b>The runs differ in more than the model</b> — a "
                     "difference in the tables may come from these settings:<ul>"
                     + "".join(f"<li>{escape(w)}</li>" for w in comparison.warnings) + "</ul></div>")
    if comparison.mismatches:
        parts.append("<div class='warn' id='mismatch'><b>Compared despite mismatch (--allow-mismatch):</b><ul>"
                     + "".join(f"<li>{escape(m)}</li>" for m in comparison.mismatches) + "</ul></div>")
    parts.append(_overview_section(comparison, index))
    for benchmark in dict.fromkeys(t.benchmark for t in comparison.tables):
        parts.append(f"<h2 class='benchmark'>{escape(benchmark)}</h2>")
        for spec in benchmark_figures(comparison, benchmark, index):
            figures.append(spec)
            parts.append(_figure(spec, folder))
        for number, table in enumerate(comparison.tables):
            if table.benchmark != benchmark:
                continue
            parts.append(_table_section(number, table, comparison, index))
            if table.level == "image":  # a set-level metric (FID, KID) has one value per run: no distribution
                spec = distribution_figure(table, index)
                figures.append(spec)
                parts.append(_figure(spec, folder))
    parts.append("".join(f"<p class='note'>{escape(line)}</p>" for line in formats.notes(comparison)))
    for benchmark in dict.fromkeys(t.benchmark for t in comparison.tables):
        tables = _grid_tables(comparison, benchmark, grid_metric)
        for table in tables:  # per metric: the best and worst images, and where the runs differ most
            grid_runs = [index.run(benchmark, row.label) for row in table.rows]
            parts.append(_grid_section(table, grid_runs, top_k, index))
            if len(grid_runs) > 1:
                parts.append(_grid_section(table, grid_runs, top_k, index, differ=True))
    parts.append(people_html.section(runs, top_k, lambda label: _swatch(index, label)))
    parts.append("</body></html>")
    return "\n".join(parts), figures


def _with_study(page: str, figures: list[FigureSpec], study: Path, comparison: Comparison, folder: str
                ) -> tuple[str, list[FigureSpec]]:
    """The page with the study's metric-agreement section (and its figure) before the end of the body."""
    settings = comparison.settings
    section, spec = agreement_section(study, settings.n_resamples, settings.seed)
    end = page.rindex("</body>")
    return page[:end] + section + _figure(spec, folder) + "\n" + page[end:], [*figures, spec]


def _swatch(index: RunIndex, label: str) -> str:
    colour = index.colour_of[label]
    return f"<span class='swatch' data-colour='{colour}' style='background:{colour}'></span>"


def _runs_section(comparison: Comparison, index: RunIndex) -> str:
    head = formats.RUN_HEADERS + ["scorers", "config hash"]
    rows = []
    for info in comparison.runs:
        scorers = ", ".join(f"{k} ({v})" for k, v in info["scorers"].items())
        cells = [escape(str(c)) for c in formats.run_cells(info) + [scorers, info["config_hash"][:12]]]
        cells[0] = _swatch(index, info["label"]) + cells[0]
        rows.append(f"<tr data-label='{escape(info['label'])}' data-benchmark='{escape(info['benchmark'])}' "
                    f"data-path='{escape(info['path'])}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<h2>Runs</h2><table class='runs'><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + "</tr>" + "".join(rows) + "</table>")  # wraps to the page width: no column hidden behind a scrollbar


def _overview_section(comparison: Comparison, index: RunIndex) -> str:
    view = overview_table.overview(comparison)
    groups: list[list] = []
    for column in view.columns:
        if groups and groups[-1][0] == column.benchmark:
            groups[-1][1] += 1
        else:
            groups.append([column.benchmark, 1])
    top = "<tr><th rowspan='2'>run</th>" + "".join(f"<th colspan='{n}' style='text-align:center'>{escape(b)}</th>"
                                                    for b, n in groups) + "</tr>"
    second = "<tr>" + "".join(f"<th>{escape(c.metric_title)}</th>" for c in view.columns) + "</tr>"
    body = "".join(f"<tr data-label='{escape(label)}'><td>{_swatch(index, label)}{escape(label)}</td>"
                   + "".join(f"<td>{escape(view.text(label, c))}</td>" for c in view.columns) + "</tr>"
                   for label in view.labels)
    return (f"<h2>Overview</h2><div class='scroll'><table class='overview'>{top}{second}{body}</table></div>"
            f"<p class='note'>{escape(view.note())} Also: <code>molebench compare --overview --format "
            f"md|csv|latex</code>.</p>")


def _figure(spec: FigureSpec, folder: str) -> str:
    name = spec.rendered.name
    return (f"<figure class='plot' id='fig-{name}' data-kind='{spec.kind}' data-benchmark='{escape(spec.benchmark)}'"
            f" data-labels='{escape('|'.join(spec.labels))}' data-metrics='{escape('|'.join(spec.metrics))}'"
            f" data-values='{escape(json.dumps(spec.values))}'>"
            f"{inline_svg(spec.rendered.svg, 'f-' + name)}"
            f"<figcaption>{escape(spec.caption)} · <a href='{escape(folder)}/{name}.svg'>SVG</a> · "
            f"<a href='{escape(folder)}/{name}.png'>PNG</a></figcaption></figure>")


def _table_section(number: int, table: MetricTable, comparison: Comparison, index: RunIndex) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in formats.headers(comparison))
    places = formats.table_places(table)
    rows = []
    for row in table.rows:
        cells = [escape(c) for c in formats.cells(row, comparison, places=places)]
        cells[0] = _swatch(index, row.label) + cells[0]
        rows.append(f"<tr class='{escape(row.verdict)}' data-label='{escape(row.label)}'>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<h3 id='table-{number}'>{escape(table.title)}</h3>"
            f"<table class='comparison' data-benchmark='{escape(table.benchmark)}'><tr>{head}</tr>{''.join(rows)}"
            "</table>")


def _grid_tables(comparison: Comparison, benchmark: str, wanted: str | None) -> list[MetricTable]:
    """The per-image metrics of a benchmark with a grid: every one, or those `--metric` names."""
    tables = [t for t in comparison.tables if t.benchmark == benchmark and t.level == "image"]
    if wanted:
        tables = [t for t in tables if wanted in (f"{t.scorer}/{t.metric}", t.scorer, t.metric)] or tables
    return tables


def _grid_section(table: MetricTable, runs: list[LoadedRun], top_k: int, index: RunIndex,
                  differ: bool = False) -> str:
    """Images (prompt and seed, every seed a candidate) with the highest and lowest mean score over all runs; or,
    with `differ`, those where a run differs most from the reference. Every run's image in each row."""
    pairs = shared_pairs(runs, table.scorer, table.metric)
    if pairs.empty:
        return ""
    frames = [r.values(table.scorer, table.metric).merge(pairs, on=PAIR_KEYS).set_index(PAIR_KEYS) for r in runs]
    if differ:
        gaps = pd.concat([(f["value"] - frames[0]["value"]).abs() for f in frames[1:]], axis=1).max(axis=1)
        ordered = gaps.dropna().sort_values(ascending=False, kind="mergesort")
        ordered = ordered[ordered > 0]
        if ordered.empty:  # identical scores: nothing to show
            return (f"<p class='note'>{escape(table.benchmark)}, {escape(table.scorer)}/{escape(table.metric)}: every "
                    "run scores every shared image exactly as the reference does.</p>")
        picks = [("differ", key) for key in ordered.index[:top_k]]
    else:
        mean = sum(f["value"] for f in frames) / len(frames)
        ordered = mean.dropna().sort_values(ascending=False, kind="mergesort")
        k = min(top_k, len(ordered) // 2 or 1)
        picks = [("best", key) for key in ordered.index[:k]] + [("worst", key) for key in ordered.index[::-1][:k]]
    head = ("<tr><th>prompt</th>" + "".join(f"<th>{_swatch(index, r.label)}{escape(r.label)}</th>" for r in runs)
            + "</tr>")
    places = formats.table_places(table)
    rows = []
    for kind, (prompt_id, seed) in picks:
        prompt = frames[0].loc[(prompt_id, seed), "prompt"]
        cells = [f"<td class='prompt'><b>{kind}</b> · {escape(str(prompt_id))} · seed {seed}<br>{escape(prompt)}</td>"]
        for run, frame in zip(runs, frames):
            hit = frame.loc[(prompt_id, seed)]
            cells.append(f"<td data-label='{escape(run.label)}' data-prompt='{escape(str(prompt_id))}' "
                         f"data-seed='{seed}'>{_thumb(run, hit['key'])}"
                         f"<span>{formats.num(hit['value'] * table.scale, places)}</span></td>")
        rows.append(f"<tr class='{kind}'>" + "".join(cells) + "</tr>")
    metric = f"{escape(table.scorer)}/{escape(table.metric)}"
    if differ:
        title = f"Where the runs differ most — {escape(table.benchmark)}, {metric}"
        note = (f"Images (prompt and seed) with the largest |score − {escape(runs[0].label)}'s| of any run, "
                "largest first.")
    else:
        title = f"Best and worst images — {escape(table.benchmark)}, {metric}"
        note = ("Images (prompt and seed, all seeds) ranked by their mean score over all runs on this metric; the "
                "same prompt and seed in every column.")
    return (f"<h2>{title}</h2><p class='note'>{note}</p><table class='grid{' differ' if differ else ''}' "
            f"data-benchmark='{escape(table.benchmark)}' data-metric='{metric}'>{head}{''.join(rows)}</table>")


def _thumb(run: LoadedRun, key: str) -> str:
    path = run.image_path(key)
    try:
        with Image.open(path) as image:
            uri = png_data_uri(image, THUMB)
    except (OSError, ValueError) as exc:
        return f"<div class='missing'>image unavailable: {escape(path.name)} ({escape(type(exc).__name__)})</div>"
    return f"<img class='thumb' alt='{escape(key)}' src='{uri}'>"
