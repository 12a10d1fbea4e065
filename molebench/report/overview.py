"""The models × metrics overview (the shape of the MoLE paper's Table 1): rows are runs by label, columns are
benchmark × metric, each cell `mean ± spread`, in markdown, CSV, LaTeX, JSON, a rich table and the HTML report.

The spread is the larger distance from the mean to a bound of its bootstrap CI over prompts (BCa intervals are not
symmetric; the larger side keeps the ± honest), or, for a `--protocol paper` run with repeats, the paper's form:
the mean of the repeat means ± their standard error. Mean and spread are printed with the same number of decimals, chosen per
column from the magnitude of its means.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from molebench.report import people
from molebench.report.compare import Comparison, MetricTable, Row
from molebench.report.text import tex
from molebench.stats import decimals


@dataclass(frozen=True)
class Column:
    benchmark: str
    scorer: str
    metric: str
    scale: float
    version: str
    given: str | None = None  # measured only where this part was found (molebench.report.people)
    partial: bool = False  # a value on some images only (a rate or a metric given a part): n is shown

    @property
    def key(self) -> str:
        return f"{self.benchmark} {self.scorer}/{self.metric}"

    @property
    def metric_title(self) -> str:
        return f"{self.scorer}/{self.metric}" + (f" ×{self.scale:g}" if self.scale != 1 else "")


@dataclass(frozen=True)
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    se: float | None = None  # standard error over repeats, or a set-level value's own std
    kind: str = "ci"  # ci | repeats | set
    n: int | None = None  # images the mean rests on

    @property
    def spread(self) -> float:
        if self.se is not None:
            return self.se
        return max(self.mean - self.ci_low, self.ci_high - self.mean)  # NaN where there is no CI (set level)


@dataclass
class Overview:
    columns: list[Column]
    labels: list[str]
    models: dict[str, str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (label, column key) -> cell
    places: dict[str, int] = field(default_factory=dict)  # column key -> decimals
    confidence: float = 0.95

    def cell(self, label: str, column: Column) -> Cell | None:
        return self.cells.get((label, column.key))

    def text(self, label: str, column: Column, pm: str = "±") -> str:
        cell = self.cell(label, column)
        found = f" (n={cell.n})" if cell is not None and column.partial and cell.n is not None else ""
        if cell is None or not math.isfinite(cell.mean):
            return "—" + found
        p = self.places[column.key]
        if not math.isfinite(cell.spread):  # a set-level value without a std
            return f"{cell.mean:.{p}f}{found}"
        return f"{cell.mean:.{p}f} {pm} {cell.spread:.{p}f}{found}"

    def note(self) -> str:
        repeats = any(c.kind == "repeats" for c in self.cells.values())
        ci = (f"± the larger distance from the mean to its {self.confidence:.0%} bootstrap CI bound (prompts as "
              "units)")
        sets = " Set-level metrics (FID, KID): the value ± its std where defined." if any(
            c.kind == "set" for c in self.cells.values()) else ""
        given = (" (n=…): the images a face or hand value rests on — for a found_when_asked rate the images whose "
                 "prompt asks for the part, for a quality, anatomy or NAME@part score the images where the part was "
                 "found (read it beside the rate)." if any(c.partial for c in self.columns) else "")
        return ("Mean " + ("of the repeat means ± their standard error where a run has repeats (--protocol paper), "
                           "otherwise mean " if repeats else "") + ci + "; — = not measured." + sets + given)


def overview(comparison: Comparison) -> Overview:
    labels = list(dict.fromkeys(info["label"] for info in comparison.runs))
    models: dict[str, str] = {}
    for info in comparison.runs:
        known = models.get(info["label"], "")
        models[info["label"]] = known if info["model"] in known.split(", ") else ", ".join(
            filter(None, [known, info["model"]]))
    result = Overview(columns=[], labels=labels, models=models, confidence=comparison.settings.confidence)
    for table in comparison.tables:
        column = _column(table)
        result.columns.append(column)
        for row in table.rows:
            result.cells[(row.label, column.key)] = _cell(row)
        result.places[column.key] = decimals([r.mean for r in table.rows])
    return result


def _column(table: MetricTable) -> Column:
    return Column(table.benchmark, table.scorer, table.metric, table.scale, table.version,
                  people.given(table.scorer, table.metric), people.partial(table.scorer, table.metric))


def _cell(row: Row) -> Cell:
    """`--protocol paper` runs (repeats): the paper's form, mean of the repeat means ± their standard error; a
    set-level value (FID, KID): ± its own std where defined."""
    if row.n_repeats and row.repeats_mean is not None:
        return Cell(row.repeats_mean, row.ci_low, row.ci_high, row.repeats_se, "repeats", row.n)
    if row.n_reference is not None:
        return Cell(row.mean, float("nan"), float("nan"), row.std, "set", row.n)
    return Cell(row.mean, row.ci_low, row.ci_high, n=row.n)


# --- renderers ----------------------------------------------------------------------------------------------------
def to_markdown(view: Overview) -> str:
    head = ["run", "model"] + [f"{c.benchmark} {c.metric_title}" for c in view.columns]
    lines = [f"> {view.note()}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join([" --- ", " --- "] + [" ---: "] * len(view.columns)) + "|"]
    for label in view.labels:
        cells = [label, view.models[label]] + [view.text(label, c) for c in view.columns]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(view: Overview) -> str:
    """Numbers, not text: per column its mean, the ± shown, and the CI bounds (and s.e. where there are repeats)."""
    head = ["label", "model"]
    for c in view.columns:
        head += [f"{c.key} {part}" for part in ("mean", "pm", "ci_low", "ci_high", "se", "n")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for label in view.labels:
        row: list[Any] = [label, view.models[label]]
        for c in view.columns:
            cell = view.cell(label, c)
            row += ["", "", "", "", "", ""] if cell is None else [
                _blank(cell.mean), _blank(cell.spread), _blank(cell.ci_low), _blank(cell.ci_high),
                "" if cell.se is None else cell.se, "" if cell.n is None else cell.n]
        writer.writerow(row)
    return buffer.getvalue()


def to_latex(view: Overview) -> str:
    groups: list[tuple[str, int]] = []
    for c in view.columns:
        if groups and groups[-1][0] == c.benchmark:
            groups[-1] = (c.benchmark, groups[-1][1] + 1)
        else:
            groups.append((c.benchmark, 1))
    spans, start = [], 2
    for _, width in groups:
        spans.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    out = [f"% {view.note()}".replace("\n", " "), "\\begin{table}[t]", "\\centering", "\\caption{Overview}",
           "\\begin{tabular}{l" + "c" * len(view.columns) + "}", "\\toprule",
           " & ".join(["Method"] + [f"\\multicolumn{{{w}}}{{c}}{{{tex(b)}}}" for b, w in groups]) + " \\\\",
           "".join(spans),
           " & ".join([""] + [tex(c.metric_title) for c in view.columns]) + " \\\\", "\\midrule"]
    for label in view.labels:
        cells = [tex(label)] + [tex(view.text(label, c)) for c in view.columns]
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def to_json(view: Overview) -> str:
    rows = []
    for label in view.labels:
        cells = {}
        for c in view.columns:
            cell = view.cell(label, c)
            if cell is not None:
                cells[c.key] = {"mean": _finite(cell.mean), "pm": _finite(cell.spread), "ci_low": _finite(cell.ci_low),
                                "ci_high": _finite(cell.ci_high), "se": cell.se, "n": cell.n,
                                "text": view.text(label, c)}
        rows.append({"label": label, "model": view.models[label], "cells": cells})
    columns = [{"key": c.key, "benchmark": c.benchmark, "scorer": c.scorer, "metric": c.metric, "scale": c.scale,
                "version": c.version, "given": c.given, "decimals": view.places[c.key]} for c in view.columns]
    return json.dumps({"note": view.note(), "columns": columns, "rows": rows}, indent=2, allow_nan=False) + "\n"


def rich_table(view: Overview) -> Table:
    table = Table(title="overview: mean ± spread", caption=view.note())
    table.add_column("run")
    table.add_column("model")
    for c in view.columns:
        table.add_column(f"{c.benchmark}\n{c.metric_title}", justify="right", no_wrap=True)
    for label in view.labels:
        table.add_row(label, view.models[label], *[view.text(label, c) for c in view.columns])
    return table


def render(view: Overview, fmt: str) -> str:
    renderers = {"md": to_markdown, "csv": to_csv, "latex": to_latex, "json": to_json}
    if fmt not in renderers:
        raise ValueError(f"unknown overview format {fmt!r}; expected one of {sorted(renderers)}")
    return renderers[fmt](view)


def _blank(value: float) -> float | str:
    return value if math.isfinite(value) else ""


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
