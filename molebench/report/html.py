"""`molebench report`: one self-contained static HTML page (no network, images inlined as base64 PNG).

Sections: the runs, the comparison tables (same statistics as `compare`), a distribution plot per benchmark ×
metric, and per benchmark a grid of the best- and worst-scored prompts (by the mean over all runs) showing every
model's image for the same prompt and seed.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from html import escape
from pathlib import Path

from PIL import Image

from molebench import __version__
from molebench.atomic import atomic_write_text
from molebench.report import formats
from molebench.report.compare import Comparison, MetricTable
from molebench.report.plots import distribution_png
from molebench.report.runs import PAIR_KEYS, LoadedRun, per_prompt, shared_pairs

THUMB = 160
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1400px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
table.runs td{text-align:left}tr.better td{background:#e8f6e8}tr.worse td{background:#fbe9e9}tr.reference td{font-weight:600}
.note{color:#555;font-size:.8rem}.warn{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem;margin:1rem 0}
img.plot{max-width:100%;border:1px solid #eee}
table.grid td{vertical-align:top;text-align:center}table.grid td.prompt{text-align:left;max-width:18rem}
img.thumb{width:160px;height:auto;image-rendering:auto;display:block;margin:auto}
"""


def write_report(runs: list[LoadedRun], comparison: Comparison, out: str | Path, top_k: int = 3,
                 grid_metric: str | None = None) -> Path:
    """Render the page and write it atomically; returns the path."""
    out = Path(out)
    atomic_write_text(out, render(runs, comparison, top_k, grid_metric))
    return out


def render(runs: list[LoadedRun], comparison: Comparison, top_k: int = 3, grid_metric: str | None = None) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>molebench report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>molebench report</h1>",
             f"<p class='note'>generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by "
             f"molebench {escape(__version__)}</p>",
             _runs_section(comparison)]
    if comparison.mismatches:
        parts.append("<div class='warn' id='mismatch'><b>Compared despite mismatch (--allow-mismatch):</b><ul>"
                     + "".join(f"<li>{escape(m)}</li>" for m in comparison.mismatches) + "</ul></div>")
    by_label = {r.label: r for r in runs}
    for index, table in enumerate(comparison.tables):
        parts.append(_table_section(index, table, comparison, by_label))
    parts.append("".join(f"<p class='note'>{escape(line)}</p>" for line in formats.notes(comparison)))
    for benchmark in dict.fromkeys(t.benchmark for t in comparison.tables):
        table = _grid_table(comparison, benchmark, grid_metric)
        if table is not None:
            parts.append(_grid_section(table, [by_label[row.label] for row in table.rows], top_k))
    parts.append("</body></html>")
    return "\n".join(parts)


def _runs_section(comparison: Comparison) -> str:
    head = ["run", "model", "benchmark", "run id", "images", "date", "scorers", "config hash"]
    rows = []
    for info in comparison.runs:
        scorers = ", ".join(f"{k} ({v})" for k, v in info["scorers"].items())
        cells = [info["label"], info["model"], info["benchmark"], info["run_id"], str(info["images"]), info["date"],
                 scorers, info["config_hash"][:12]]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return ("<h2>Runs</h2><table class='runs'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(rows) + "</table>")


def _table_section(index: int, table: MetricTable, comparison: Comparison, by_label: dict[str, LoadedRun]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in formats.headers(comparison))
    body = "".join(f"<tr class='{escape(row.verdict)}'>"
                   + "".join(f"<td>{escape(c)}</td>" for c in formats.cells(row, comparison)) + "</tr>"
                   for row in table.rows)
    section = (f"<h2 id='table-{index}'>{escape(table.title)}</h2>"
               f"<table class='comparison'><tr>{head}</tr>{body}</table>")
    if table.level == "set":  # one value per run: no distribution to draw
        return section
    png = _plot(table, by_label)
    return (section + f"<img class='plot' alt='score distributions: {escape(table.title)}' "
                      f"src='data:image/png;base64,{png}'>")


def _plot(table: MetricTable, by_label: dict[str, LoadedRun]) -> str:
    runs = [by_label[row.label] for row in table.rows]
    series = [(r.label, r.values(table.scorer, table.metric)["value"].to_numpy() * table.scale) for r in runs]
    differences = []
    if len(runs) > 1:
        pairs = shared_pairs(runs, table.scorer, table.metric)
        ref = per_prompt(runs[0].values(table.scorer, table.metric), pairs)
        for run in runs[1:]:
            cand = per_prompt(run.values(table.scorer, table.metric), pairs).reindex(ref.index)
            differences.append((run.label, (cand - ref).to_numpy() * table.scale))
    unit = f" ×{table.scale:g}" if table.scale != 1 else ""
    png = distribution_png(series, differences, f"{table.scorer}/{table.metric}{unit}")
    return base64.b64encode(png).decode("ascii")


def _grid_table(comparison: Comparison, benchmark: str, wanted: str | None) -> MetricTable | None:
    tables = [t for t in comparison.tables if t.benchmark == benchmark and t.level == "image"]
    if wanted:
        tables = [t for t in tables if wanted in (f"{t.scorer}/{t.metric}", t.scorer, t.metric)] or tables
    return tables[0] if tables else None


def _grid_section(table: MetricTable, runs: list[LoadedRun], top_k: int) -> str:
    """Prompts with the highest and lowest mean score over all runs; each run's image for one shared seed."""
    pairs = shared_pairs(runs, table.scorer, table.metric)
    if pairs.empty:
        return ""
    frames = [r.values(table.scorer, table.metric).merge(pairs, on=PAIR_KEYS) for r in runs]
    mean_by_prompt = sum(f.groupby("prompt_id")["value"].mean() for f in frames) / len(frames)
    ordered = mean_by_prompt.sort_values(ascending=False, kind="mergesort")
    k = min(top_k, len(ordered) // 2 or 1)
    picks = [("best", p) for p in ordered.index[:k]] + [("worst", p) for p in ordered.index[::-1][:k]]
    head = "<tr><th>prompt</th>" + "".join(f"<th>{escape(r.label)}</th>" for r in runs) + "</tr>"
    rows = []
    for kind, prompt_id in picks:
        seed = int(pairs.loc[pairs["prompt_id"] == prompt_id, "seed"].min())
        prompt = frames[0].loc[frames[0]["prompt_id"] == prompt_id, "prompt"].iloc[0]
        cells = [f"<td class='prompt'><b>{kind}</b> · {escape(str(prompt_id))} · seed {seed}<br>{escape(prompt)}</td>"]
        for run, frame in zip(runs, frames):
            hit = frame[(frame["prompt_id"] == prompt_id) & (frame["seed"] == seed)].iloc[0]
            cells.append(f"<td>{_thumb(run, hit['key'])}<span>{hit['value'] * table.scale:.3f}</span></td>")
        rows.append(f"<tr class='{kind}'>" + "".join(cells) + "</tr>")
    return (f"<h2>Best and worst prompts — {escape(table.benchmark)}, {escape(table.scorer)}/{escape(table.metric)}"
            f"</h2><p class='note'>Prompts ranked by the mean score over all runs; the same prompt and seed in every "
            f"column.</p><table class='grid'>{head}{''.join(rows)}</table>")


def _thumb(run: LoadedRun, key: str) -> str:
    path = run.image_path(key)
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = THUMB / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BICUBIC if scale < 1 else Image.Resampling.NEAREST)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError) as exc:
        return f"<div class='missing'>image unavailable: {escape(path.name)} ({escape(type(exc).__name__)})</div>"
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='thumb' alt='{escape(key)}' src='data:image/png;base64,{data}'>"
