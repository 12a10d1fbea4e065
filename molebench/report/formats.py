"""Render a Comparison: rich tables for the terminal, and markdown, CSV, LaTeX or JSON for files and papers."""

from __future__ import annotations

import csv
import io
import json
import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from molebench.report import people
from molebench.report.compare import Comparison, MetricTable, Row
from molebench.report.csv_safe import direction_text, safe_row
from molebench.report.settings import SETTING_COLUMNS, SETTING_HEADERS, shown
from molebench.report.text import tex
from molebench.stats import decimals

FORMATS = ("table", "md", "csv", "latex", "json")
CSV_COLUMNS = ["benchmark", "scorer", "metric", "version", "scale", "reference", "label", "model", "run_id", "mean",
               "ci_low", "ci_high", "n", "n_prompts", "diff", "diff_low", "diff_high", "p_value", "win_rate", "n_pairs",
               "verdict", "paper", "paper_table", "confidence", "mismatches", "paper_se", "paper_differences",
               "repeats_mean", "repeats_se", "n_repeats", "higher_is_better", "level", "std", "n_reference",
               "seed_means", "seed_sd", "setting_differences", "pooled_mean", "pooled_ci_low", "pooled_ci_high"]
# The run's settings follow (n_prompts is already there, per table).
CSV_COLUMNS += [c for c in SETTING_COLUMNS if c not in CSV_COLUMNS]
RUN_HEADERS = ["run", "model", "benchmark", "run id"] + [SETTING_HEADERS[c] for c in SETTING_COLUMNS]


def num(value: float | None, places: int | None = None) -> str:
    """A number with `places` decimals (a table's precision, see `table_places`); alone: 2 if ≥ 10 else 3."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if places is None:
        places = decimals([value])
    return f"{value:.{places}f}"


def table_places(table: MetricTable) -> int:
    """One precision per table, from the magnitude of its means: mean, CI and Δ are printed alike."""
    return decimals([row.mean for row in table.rows])


def run_cells(info: dict) -> list[str]:
    """One row of the runs table: label, model, benchmark, run id and the settings."""
    settings = info.get("settings") or {}
    return [info["label"], info["model"], info["benchmark"], info["run_id"]] + [
        shown(c, settings.get(c, "")) for c in SETTING_COLUMNS]


def pval(value: float | None) -> str:
    if value is None:
        return "—"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def headers(comparison: Comparison, compact: bool = False) -> list[str]:
    level = f"{comparison.settings.confidence:.0%}"
    if compact:  # the terminal: estimate and CI in one cell
        cols = ["run", f"mean [{level} CI]", "prompts", "images", f"Δ vs ref [{level} CI]", "p", "win", "verdict"]
    else:
        cols = ["run", "mean", f"{level} CI", "prompts", "images", "Δ vs ref", f"Δ {level} CI", "p (Wilcoxon)",
                "win rate", "verdict"]
    repeats = _repeat_count(comparison)
    return cols + (["per-seed means (s.d.)"] if _several_seeds(comparison) else []) + (
        [f"pooled mean [{level} CI]"] if repeats else []) + (["paper"] if comparison.paper_citation else [])


def _several_seeds(comparison: Comparison) -> bool:
    return any(len(row.seed_means) > 1 for table in comparison.tables for row in table.rows)


def seed_cell(row: Row, places: int) -> str:
    """`20.11, 21.08 (s.d. 0.69)`: the mean of each seed in seed order, then their between-seed s.d."""
    if len(row.seed_means) < 2:
        return "—"
    means = ", ".join(num(row.seed_means[seed], places) for seed in sorted(row.seed_means))
    return f"{means} (s.d. {num(row.seed_sd, places)})"


def _repeat_count(comparison: Comparison) -> int:
    """Repeats of the `--protocol paper` runs shown (0 when none is one)."""
    return max((row.n_repeats or 0 for table in comparison.tables for row in table.rows), default=0)


def pooled_cell(row: Row, places: int) -> str:
    """A protocol run's mean over all its distinct prompts with its CI (a set-level value over all images), shown
    only under this label; `—` for other runs, whose mean is already that."""
    if row.pooled_mean is None:
        return "—"
    if row.n_reference is not None:
        return num(row.pooled_mean, places)
    return f"{num(row.pooled_mean, places)} [{num(row.pooled_ci_low, places)}, {num(row.pooled_ci_high, places)}]"


def paper_cell(row: Row, places: int | None = None) -> str:
    """The paper's number as it prints it (mean ± s.e.), marked * when the run was measured differently."""
    if row.paper is None:
        return "n/a"
    return plus_minus(row.paper, row.paper_se, places) + (" *" if row.paper_differences else "")


def plus_minus(value: float | None, se: float | None, places: int | None = None) -> str:
    """`mean ± s.e.` with the s.e. at the mean's precision, as the paper prints it (20.17 ± 0.08)."""
    if se is None or (isinstance(se, float) and math.isnan(se)):
        return num(value, places)
    text = num(value, places)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{text} ± {se:.{decimals}f}"


def cells(row: Row, comparison: Comparison, compact: bool = False, places: int | None = None) -> list[str]:
    """One row's cells, every number at `places` decimals (the table's precision, table_places); a set-level row
    (one value per run: FID, KID) shows ± its std where defined instead of a CI, its image counts as
    `n vs n_reference ref`, and no test columns."""
    ref = row.is_reference
    p = decimals([row.mean]) if places is None else places
    tested = row.n_reference is None
    if row.n_repeats:  # a protocol run: the headline is the mean of the repeat means ± their s.e.
        ci = f"± {num(row.repeats_se, p)} ({row.n_repeats} repeats)"
    elif tested:
        ci = f"[{num(row.ci_low, p)}, {num(row.ci_high, p)}]"
    else:
        ci = f"± {num(row.std, p)}" if row.std is not None else ""
    diff_ci = f"[{_signed(row.diff_low, p)}, {_signed(row.diff_high, p)}]" if tested else ""
    diff, diff_ci = ("", "") if ref else (_signed(row.diff, p), diff_ci)
    win = "" if ref or row.win_rate is None else f"{row.win_rate:.0%}" if compact else f"{row.win_rate:.1%}"
    tail = ["" if ref or row.p_value is None else pval(row.p_value), win, row.verdict]
    n = str(row.n) if tested else f"{row.n} vs {row.n_reference} ref"
    if compact:
        out = [row.label + (" (ref)" if ref else ""), f"{num(row.mean, p)} {ci}".strip(), str(row.n_prompts), n,
               f"{diff} {diff_ci}".strip()] + tail
    else:
        out = [row.label + (" (ref)" if ref else ""), num(row.mean, p), ci, str(row.n_prompts), n, diff,
               diff_ci] + tail
    if _several_seeds(comparison):
        out.append(seed_cell(row, p))
    if _repeat_count(comparison):
        out.append(pooled_cell(row, p))
    if comparison.paper_citation:
        out.append(paper_cell(row, p))
    return out


def notes(comparison: Comparison) -> list[str]:
    s = comparison.settings
    lines = [f"Mean over prompts (seeds averaged per prompt), {s.method} bootstrap CI ({s.n_resamples} resamples, "
             f"seed {s.seed}); Δ = paired per-prompt difference vs the reference; verdict at α={s.alpha:g} needs the "
             "Wilcoxon p below α and the Δ CI excluding 0; better/worse follow each metric's direction (↑ higher is "
             "better, ↓ lower is better)."]
    if any(t.level == "set" for t in comparison.tables):
        lines.append("Set-level metrics (FID, KID) are one value per run over n generated vs n_ref reference images: "
                     "no CI or test (± is KID's std over subsets); FID is biased upwards at small n, so compare only "
                     "equal n and reference sets.")
    if _several_seeds(comparison):
        lines.append("prompts: prompts the mean rests on (the CI's units); images: prompts × seeds; per-seed means: "
                     "the mean over the prompts of each seed, and the s.d. between those means")
    people_note = people.note([(t.scorer, t.metric) for t in comparison.tables])
    if people_note:
        lines.append(people_note)
    if comparison.mismatches:
        lines.insert(0, "COMPARED DESPITE MISMATCH (--allow-mismatch): " + "; ".join(comparison.mismatches)
                     + ". Means, Δ and tests use only the (prompt, seed) pairs every run of a table scored "
                       "(prompts and images columns)")
    if comparison.warnings:
        lines.insert(0, setting_warning(comparison))
    if _repeat_count(comparison):
        lines.append("`--protocol paper` runs: the mean is the run's headline number, the mean of its repeat means ± "
                     "their standard error (the form of the paper's tables), in the paper's units (HPS ×100, "
                     "ImageReward ×100) like every run of the table; pooled mean: over all distinct prompts of the "
                     "run, with its bootstrap CI; Δ and tests: paired per prompt")
    if comparison.paper_citation:
        lines.append(f"paper: {comparison.paper_citation}; tables in the paper's units (HPS ×100, ImageReward ×100), "
                     "its numbers as mean ± s.e. over 3 repeats of 3,000 prompts" + (
                         "; n/a = not stated or not verified (see the `missing` list in the paper results file)"
                         if comparison.paper_missing else ""))
        differing = {f"{row.label}: {'; '.join(row.paper_differences)}" for table in comparison.tables
                     for row in table.rows if row.paper_differences}
        if differing:
            lines.append("* measured differently from the paper: " + " | ".join(sorted(differing)))
    return lines


def setting_warning(comparison: Comparison) -> str:
    """The one-line warning that the runs differ in more than the model (empty when they do not)."""
    if not comparison.warnings:
        return ""
    return ("WARNING: the runs differ in more than the model, so a difference may come from these settings: "
            + "; ".join(comparison.warnings))


def render(comparison: Comparison, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(comparison)
    if fmt == "csv":
        return to_csv(comparison)
    if fmt == "latex":
        return to_latex(comparison)
    if fmt == "json":
        return json.dumps(_clean(comparison.to_json()), indent=2, allow_nan=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def runs_rich_table(comparison: Comparison) -> Table:
    """Runs as columns and their settings as rows: a terminal fits a few runs, not fifteen setting columns."""
    view = Table(title="runs")
    view.add_column("", style="bold")
    for info in comparison.runs:
        view.add_column(info["label"])
    for index, header in enumerate(RUN_HEADERS[1:], start=1):
        view.add_row(header, *[run_cells(info)[index] for info in comparison.runs])
    return view


def rich_tables(comparison: Comparison) -> Group:
    parts: list = [runs_rich_table(comparison)]
    for table in comparison.tables:
        view = Table(title=table.title)
        for index, header in enumerate(headers(comparison, compact=True)):
            view.add_column(header, justify="left" if index == 0 else "right", no_wrap=index > 0,
                            min_width=min(24, max(len(r.label) for r in table.rows) + 6) if index == 0 else None)
        for row in table.rows:
            style = {"better": "green", "worse": "red"}.get(row.verdict)
            view.add_row(*cells(row, comparison, compact=True, places=table_places(table)), style=style)
        parts.append(view)
    parts += [Text(line, style="bold yellow" if line.startswith("WARNING") else "dim") for line in notes(comparison)]
    return Group(*parts)


def to_markdown(comparison: Comparison) -> str:
    out = []
    for line in notes(comparison):
        out.append(f"> {line}\n")
    out.append("\n### Runs\n")
    out.append("| " + " | ".join(RUN_HEADERS) + " |")
    out.append("|" + "|".join([" --- "] * len(RUN_HEADERS)) + "|")
    for info in comparison.runs:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in run_cells(info)) + " |")
    for table in comparison.tables:
        out.append(f"\n### {table.title}\n")
        cols = headers(comparison)
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(cols) - 1)) + "|")
        for row in table.rows:
            row_cells = cells(row, comparison, places=table_places(table))
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row_cells) + " |")
    return "\n".join(out) + "\n"


def to_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    settings = {info["label"] + "\0" + info["benchmark"]: info.get("settings") or {} for info in comparison.runs}
    for table in comparison.tables:
        for row in table.rows:
            run = settings.get(row.label + "\0" + table.benchmark, {})
            writer.writerow(safe_row({**{c: v for c, v in run.items() if c in CSV_COLUMNS and c != "n_prompts"},
                                      **_flat(table, row, comparison)}))
    return buffer.getvalue()


def _flat(table: MetricTable, row: Row, comparison: Comparison) -> dict:
    return {"benchmark": table.benchmark, "scorer": table.scorer, "metric": table.metric, "version": table.version,
            "scale": table.scale, "reference": table.reference, "label": row.label, "model": row.model,
            "run_id": row.run_id, "mean": row.mean, "ci_low": row.ci_low, "ci_high": row.ci_high, "n": row.n,
            "n_prompts": row.n_prompts, "diff": row.diff, "diff_low": row.diff_low, "diff_high": row.diff_high,
            "p_value": row.p_value, "win_rate": row.win_rate, "n_pairs": row.n_pairs, "verdict": row.verdict,
            "paper": row.paper, "paper_table": row.paper_table, "confidence": comparison.settings.confidence,
            "mismatches": "; ".join(comparison.mismatches), "paper_se": row.paper_se,
            "paper_differences": "; ".join(row.paper_differences), "repeats_mean": row.repeats_mean,
            "repeats_se": row.repeats_se, "n_repeats": row.n_repeats, "higher_is_better": direction_text(table.higher_is_better),
            "level": table.level, "std": row.std, "n_reference": row.n_reference,
            "seed_means": "; ".join(f"{seed}:{mean!r}" for seed, mean in sorted(row.seed_means.items())),
            "seed_sd": row.seed_sd, "setting_differences": "; ".join(comparison.warnings),
            "pooled_mean": row.pooled_mean, "pooled_ci_low": row.pooled_ci_low, "pooled_ci_high": row.pooled_ci_high}


def to_latex(comparison: Comparison) -> str:
    """booktabs tables, one per benchmark × metric, with notes as comments."""
    out = [f"% {_latex_comment(line)}" for line in notes(comparison)]
    out += ["\\begin{table*}[t]", "\\centering", "\\caption{Runs}", "\\resizebox{\\textwidth}{!}{%",
            "\\begin{tabular}{" + "l" * len(RUN_HEADERS) + "}", "\\toprule",
            " & ".join(tex(h) for h in RUN_HEADERS) + " \\\\", "\\midrule"]
    out += [" & ".join(tex(c) for c in run_cells(info)) + " \\\\" for info in comparison.runs]
    out += ["\\bottomrule", "\\end{tabular}}", "\\end{table*}", ""]
    for table in comparison.tables:
        cols = headers(comparison)
        out += ["\\begin{table}[t]", "\\centering", f"\\caption{{{tex(table.title)}}}",
                "\\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", "\\toprule",
                " & ".join(tex(c) for c in cols) + " \\\\", "\\midrule"]
        for row in table.rows:
            out.append(" & ".join(tex(c) for c in cells(row, comparison, places=table_places(table))) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out) + "\n"


def _latex_comment(text: str) -> str:
    return text.replace("\n", " ")


def _signed(value: float | None, places: int | None = None) -> str:
    if value is None:
        return "—"
    text = num(value, places)
    return text if text.startswith("-") or text == "—" else "+" + text


def _clean(value):
    """JSON has no NaN: undefined statistics become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
