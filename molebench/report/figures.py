"""The report's figures from a Comparison: per benchmark the means with CIs and the forest plot of Δ vs the
reference, per table the score distributions. Runs are found by (benchmark, label), never by label alone: one
system run on two benchmarks keeps one label (and one colour) but has two run folders."""

from __future__ import annotations

import re
from dataclasses import dataclass

from molebench.report import plots
from molebench.report.compare import Comparison, MetricTable
from molebench.report.labels import colours
from molebench.report.runs import LoadedRun, per_prompt, shared_pairs


@dataclass(frozen=True)
class FigureSpec:
    """A rendered figure and what it shows, for the page and the files written beside it."""

    kind: str  # means | forest | distribution
    benchmark: str
    caption: str
    rendered: plots.Rendered
    labels: tuple[str, ...]  # runs shown, in legend order
    metrics: tuple[str, ...]  # scorer/metric of each panel (distribution: the one metric)
    values: tuple = ()  # means: (scorer/metric, label, value, low, high) per bar, as drawn


class RunIndex:
    """Run lookup by (benchmark, label) and the colour order shared by every figure."""

    def __init__(self, runs: list[LoadedRun], comparison: Comparison) -> None:
        self.runs = {(r.benchmark, r.label): r for r in runs}
        self.labels = list(dict.fromkeys(info["label"] for info in comparison.runs))
        self.colour_of = colours(self.labels)
        self.palette = [self.colour_of[label] for label in self.labels]

    def run(self, benchmark: str, label: str) -> LoadedRun:
        return self.runs[(benchmark, label)]

    def index(self, label: str) -> int:
        return self.labels.index(label)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "figure"


def metric_title(table: MetricTable) -> str:
    return f"{table.scorer}/{table.metric}" + (f" ×{table.scale:g}" if table.scale != 1 else "")


def benchmark_figures(comparison: Comparison, benchmark: str, index: RunIndex) -> list[FigureSpec]:
    """Means with CIs for every run of the benchmark; with two runs or more, the forest plot of Δ too."""
    tables = [t for t in comparison.tables if t.benchmark == benchmark and t.level == "image"]  # set-level: no CI
    if not tables:
        return []
    level = f"{comparison.settings.confidence:.0%}"
    mean_panels = [(metric_title(t), [_estimate(r, index) for r in t.rows]) for t in tables]
    labels = tuple(r.label for r in tables[0].rows)
    metrics = tuple(f"{t.scorer}/{t.metric}" for t in tables)
    protocol = any(r.n_repeats for t in tables for r in t.rows)
    caption = f"{benchmark}: mean per run with its {level} bootstrap CI (prompts as units)" + (
        "; `--protocol paper` runs: the mean of the repeat means ± their standard error" if protocol else "")
    values = tuple((f"{t.scorer}/{t.metric}", e.label, e.value, e.low, e.high) for t, (_, panel) in
                   zip(tables, mean_panels) for e in panel)
    out = [FigureSpec("means", benchmark, caption, _render(plots.means(mean_panels, index.palette),
                                                           f"{benchmark}-means"), labels, metrics, values)]
    if len(tables[0].rows) > 1:
        forest_panels = [(metric_title(t), [plots.Estimate(r.label, index.index(r.label), r.diff, r.diff_low,
                                                           r.diff_high) for r in t.rows if not r.is_reference])
                         for t in tables]
        reference = tables[0].reference
        out.append(FigureSpec(
            "forest", benchmark, f"{benchmark}: paired per-prompt Δ vs {reference} with its {level} bootstrap CI; "
            "right of the dashed line is higher than the reference",
            _render(plots.forest(forest_panels, reference, index.palette), f"{benchmark}-forest"), labels[1:],
            metrics))
    return out


def _estimate(row, index: RunIndex) -> plots.Estimate:
    """A bar of the means figure: the table's mean (a protocol run's headline) with its CI, or ± its s.e."""
    if row.n_repeats:
        se = row.repeats_se if row.repeats_se is not None else float("nan")
        return plots.Estimate(row.label, index.index(row.label), row.mean, row.mean - se, row.mean + se)
    return plots.Estimate(row.label, index.index(row.label), row.mean, row.ci_low, row.ci_high)


def distribution_figure(table: MetricTable, index: RunIndex) -> FigureSpec:
    runs = [index.run(table.benchmark, row.label) for row in table.rows]
    series = [plots.Series(r.label, index.index(r.label), r.values(table.scorer, table.metric)["value"].to_numpy()
                           * table.scale) for r in runs]
    differences = []
    if len(runs) > 1:
        pairs = shared_pairs(runs, table.scorer, table.metric)
        ref = per_prompt(runs[0].values(table.scorer, table.metric), pairs)
        for run in runs[1:]:
            cand = per_prompt(run.values(table.scorer, table.metric), pairs).reindex(ref.index)
            differences.append(plots.Series(run.label, index.index(run.label), (cand - ref).to_numpy() * table.scale))
    figure = plots.distribution(series, differences, metric_title(table), index.palette)
    name = f"{table.benchmark}-{table.scorer}-{table.metric}-distribution"
    caption = (f"{table.benchmark}, {metric_title(table)}: histogram and box plot (◇ mean) of per-image scores"
               + ("; histogram of per-prompt differences vs the reference" if differences else ""))
    return FigureSpec("distribution", table.benchmark, caption, _render(figure, name), tuple(r.label for r in runs),
                      (f"{table.scorer}/{table.metric}",))


def _render(figure, name: str) -> plots.Rendered:
    return plots.render(figure, slug(name))
