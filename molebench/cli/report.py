"""`molebench compare | leaderboard export | report | regress`: stored runs into tables, a CSV, a page, a verdict."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer

SUFFIX_FORMATS = {".md": "md", ".csv": "csv", ".tex": "latex", ".json": "json"}


def _settings(confidence: float, resamples: int, seed: int, alpha: float):
    from molebench.errors import UsageError
    from molebench.report.compare import Settings

    if not 0 < confidence < 1:
        raise UsageError(f"--confidence must be in (0, 1), got {confidence}")
    if resamples < 100:
        raise UsageError(f"--resamples must be at least 100, got {resamples}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be in (0, 1), got {alpha}")
    return Settings(confidence=confidence, n_resamples=resamples, seed=seed, alpha=alpha)


PAPER_HELP = ("show the MoLE paper's reported numbers (mean ± s.e.) beside each run of the same model, scorer and "
              "benchmark family, with the tables in the paper's units (HPS ×100, ImageReward ×100)")
STUDY_HELP = ("a preference study database (`molebench study create`; repeatable): its win rates, and with studies "
              "over more than two runs a Bradley–Terry ranking")
LABEL_HELP = "name a run in tables and figures: NAME=RUN (repeatable; default: model name, plus folder if needed)"


def _load(runs: List[Path], reference: Optional[Path], require_complete: bool = True, labels: List[str] = ()):
    """Runs in the order given; a --reference that is not among them is loaded and put first."""
    from molebench.errors import InputError
    from molebench.report.labels import parse_label_options
    from molebench.report.runs import load_runs

    paths = list(runs)
    if not paths:
        raise InputError("give at least one run folder")
    if reference is not None and all(Path(p).resolve() != Path(reference).resolve() for p in paths):
        paths.insert(0, reference)
    loaded = load_runs(paths, require_complete, parse_label_options(labels))
    ref = None
    if reference is not None:
        ref = next(r for r in loaded if r.root.resolve() == Path(reference).resolve())
    return loaded, ref


def _comparison(runs, reference, fmt_settings, allow_mismatch, paper, paper_file, metric, labels=()):
    from molebench.report.compare import compare
    from molebench.report.paper import load_paper_results

    loaded, ref = _load(runs, reference, require_complete=not allow_mismatch, labels=labels)
    numbers = load_paper_results(paper_file) if (paper or paper_file) else None
    return loaded, compare(loaded, ref, fmt_settings, allow_mismatch, numbers, metric or None)


def compare_command(
    runs: List[Path] = typer.Argument(..., help="run folders (written by `molebench run`)"),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="reference run (default: first)"),
    fmt: str = typer.Option("table", "--format", "-f", help="table (terminal), md, csv, latex or json"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to this file instead of stdout"),
    metric: List[str] = typer.Option([], "--metric", help="only this scorer, metric or scorer/metric"),
    label: List[str] = typer.Option([], "--label", help=LABEL_HELP),
    overview: bool = typer.Option(False, "--overview", help="one models × metrics table (mean ± CI)"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="compare incompatible runs anyway"),
    paper: bool = typer.Option(False, "--paper", help=PAPER_HELP),
    paper_file: Optional[Path] = typer.Option(None, "--paper-file", help="paper numbers file (implies --paper)"),
    confidence: float = typer.Option(0.95, "--confidence"),
    resamples: int = typer.Option(9999, "--resamples", help="bootstrap resamples"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    alpha: float = typer.Option(0.05, "--alpha", help="significance level for the verdict column"),
    study: List[Path] = typer.Option([], "--study", help=STUDY_HELP),
) -> None:
    """Tables per benchmark × metric: mean, bootstrap CI, n, paired Δ vs reference, Wilcoxon p, win rate."""
    from molebench import ui
    from molebench.atomic import atomic_write_text
    from molebench.errors import UsageError
    from molebench.report import formats
    from molebench.report import overview as overview_table

    if fmt not in formats.FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(formats.FORMATS)}, got '{fmt}'")
    if out is not None and fmt == "table":
        fmt = SUFFIX_FORMATS.get(out.suffix.lower(), "")
        if not fmt:
            raise UsageError(f"--out {out}: give --format md|csv|latex|json or a .md/.csv/.tex/.json name")
    loaded, comparison = _comparison(runs, reference, _settings(confidence, resamples, seed, alpha),
                                     allow_mismatch, paper, paper_file, metric, label)
    studies = _studies(study, loaded, fmt)
    view = overview_table.overview(comparison) if overview else None
    if comparison.warnings and (fmt != "table" or view):  # the tables' notes carry it otherwise
        ui.err.print(formats.setting_warning(comparison), markup=False, highlight=False, soft_wrap=True)
    if fmt == "table":  # piped output is ui.PIPED_WIDTH wide, not squeezed into 80 columns
        ui.out.print(overview_table.rich_table(view) if view else formats.rich_tables(comparison))
        if studies is not None:
            from molebench.report.study_view import rich_view

            ui.out.print(rich_view(studies))
        return
    text = overview_table.render(view, fmt) if view else formats.render(comparison, fmt)
    if studies is not None:
        text = _with_study(text, studies, fmt)
    if out is None:
        ui.out.file.write(text)
        ui.out.file.flush()
    else:
        atomic_write_text(out, text)
        ui.err.print(f"wrote {out}")


def leaderboard_export(
    runs: Optional[List[Path]] = typer.Argument(None, help="run folders (default: every complete run in --results)"),
    out: Path = typer.Option(..., "--out", "-o", help="leaderboard CSV; existing rows are kept"),
    results: Path = typer.Option(Path("results"), "--results", help="folder scanned when no runs are given"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    resamples: int = typer.Option(9999, "--resamples", help="bootstrap resamples"),
    label: List[str] = typer.Option([], "--label", help=LABEL_HELP),
) -> None:
    """Add runs to the leaderboard CSV (one row per run × scorer × metric); rerunning replaces their rows."""
    from molebench import ui
    from molebench.errors import InputError
    from molebench.report.labels import parse_label_options
    from molebench.report.leaderboard import export
    from molebench.report.runs import load_runs
    from molebench.store.manifest import complete_runs

    paths = list(runs or [])
    if not paths:
        if not results.is_dir():
            raise InputError(f"no run folders given and {results} does not exist")
        paths = complete_runs(sorted(p for p in results.iterdir() if p.is_dir()))
        if not paths:
            raise InputError(f"no complete run folders under {results}")
    added, replaced = export(load_runs(paths, labels=parse_label_options(label)), out,
                             _settings(0.95, resamples, seed, 0.05))
    ui.err.print(f"leaderboard {out}: {added} rows added, {replaced} replaced ({len(paths)} runs)",
                 soft_wrap=True, markup=False)


def report_command(
    runs: List[Path] = typer.Argument(..., help="run folders"),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write"),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="reference run (default: first)"),
    metric: List[str] = typer.Option([], "--metric", help="only this scorer, metric or scorer/metric"),
    label: List[str] = typer.Option([], "--label", help=LABEL_HELP),
    top: int = typer.Option(3, "--top", min=1, help="best and worst prompts shown in the image grid"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="report on incompatible runs anyway"),
    paper: bool = typer.Option(False, "--paper", help=PAPER_HELP),
    paper_file: Optional[Path] = typer.Option(None, "--paper-file", help="paper numbers file (implies --paper)"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    resamples: int = typer.Option(9999, "--resamples", help="bootstrap resamples"),
    study: List[Path] = typer.Option([], "--study", help=STUDY_HELP + "; in the report also which metric "
                                     "agrees with its votes (`molebench study agreement`)"),
) -> None:
    """A static HTML page: comparison tables, score distributions, best/worst image grid."""
    from molebench import ui
    from molebench.report.html import write_report

    loaded, comparison = _comparison(runs, reference, _settings(0.95, resamples, seed, 0.05), allow_mismatch,
                                     paper, paper_file, metric, label)
    studies = _studies(study, loaded, "html")
    figures = write_report(loaded, comparison, out, top_k=top, grid_metric=metric[0] if metric else None,
                           study=studies, agreement=list(study))
    if comparison.warnings:
        from molebench.report.formats import setting_warning

        ui.err.print(setting_warning(comparison), markup=False, highlight=False, soft_wrap=True)
    ui.err.print(f"wrote {out} ({len(comparison.tables)} tables, {len(loaded)} runs); figures as SVG and PNG in "
                 f"{figures}", soft_wrap=True, markup=False)


def regress_command(
    baseline: Path = typer.Option(..., "--baseline", help="run folder of the accepted checkpoint"),
    candidate: Path = typer.Option(..., "--candidate", help="run folder of the new checkpoint"),
    metric: List[str] = typer.Option([], "--metric", help="gate on this scorer, metric or scorer/metric only"),
    max_drop: float = typer.Option(0.0, "--max-drop", help="tolerated drop, display units (HPS ×100)"),
    alpha: float = typer.Option(0.05, "--alpha", help="significance level"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    resamples: int = typer.Option(9999, "--resamples", help="bootstrap resamples"),
) -> None:
    """Regression gate for CI: exit 0 not significantly worse, 1 significantly worse, 2 cannot compare."""
    from molebench import ui
    from molebench.errors import MolebenchError
    from molebench.report import regress
    from molebench.report.runs import load_run

    try:
        settings = _settings(0.95, resamples, seed, alpha)  # gate() uses the one-sided 1 − alpha bound
        base, cand = load_run(baseline), load_run(candidate)
        base.label, cand.label = "baseline", "candidate"
        results = regress.gate(base, cand, metric or None, max_drop, alpha, settings)
    except MolebenchError as exc:
        ui.err.print(f"cannot compare: {exc}", markup=False, highlight=False, soft_wrap=True)
        ui.out.print("verdict: CANNOT COMPARE (exit 2)")
        sys.exit(regress.CANNOT_COMPARE)
    except Exception:  # noqa: BLE001 - a crash must not read as "worse" (exit 1) in CI
        ui.err.print(traceback.format_exc(), markup=False, highlight=False)
        ui.out.print("verdict: CANNOT COMPARE (internal error, exit 2)")
        sys.exit(regress.CANNOT_COMPARE)
    for warning in regress.setting_warnings(base, cand):
        ui.err.print(f"warning: the runs differ in more than the model: {warning}", markup=False,
                     highlight=False, soft_wrap=True)
    for result in results:
        ui.out.print(result.describe(alpha), markup=False, highlight=False, soft_wrap=True)
    code = regress.exit_code(results)
    verdict = "SIGNIFICANTLY WORSE" if code == regress.WORSE else "PASS (not significantly worse)"
    ui.out.print(f"verdict: {verdict} (exit {code})", markup=False)
    if code:
        sys.exit(code)  # not typer.Exit: the CLI runs click with standalone_mode=False, which returns its code


def register(app: typer.Typer) -> None:
    """The commands of this module, in the order `molebench --help` lists them."""
    app.command("compare")(compare_command)
    leaderboard = typer.Typer(help="The leaderboard CSV (stable schema, see docs/reports.md).", no_args_is_help=True)
    app.add_typer(leaderboard, name="leaderboard")
    leaderboard.command("export")(leaderboard_export)
    app.command("report")(report_command)
    app.command("regress")(regress_command)


def _studies(paths: List[Path], runs, fmt: str):
    """The studies' view, or None without --study; CSV and LaTeX have no place for it (refused)."""
    if not paths:
        return None
    from molebench.errors import UsageError
    from molebench.report.study_view import study_view

    if fmt in ("csv", "latex"):
        raise UsageError(f"--study: shown in the table, md and json formats and the report, not in {fmt} (use "
                         "`molebench study results DB --csv` for a CSV)")
    return study_view(paths, runs)


def _with_study(text: str, studies, fmt: str) -> str:
    import json

    from molebench.report.study_view import markdown

    if fmt == "json":
        data = json.loads(text)
        data["study"] = studies.to_json()
        return json.dumps(data, indent=2, allow_nan=False) + "\n"
    return text + markdown(studies)
