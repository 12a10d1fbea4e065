"""`molebench study agreement STUDY`: which metric agrees with the raters, per question (see study/agreement.py)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

SUFFIX_FORMATS = {".md": "md", ".csv": "csv", ".json": "json"}
FIGURE_SUFFIXES = (".svg", ".png")


def agreement_command(
    database: Path = typer.Argument(..., help="study database"),
    score: Optional[str] = typer.Option(None, "--score", help="first score both runs with these per-image scorers "
                                        "(comma list; only images without a score are scored)"),
    fmt: str = typer.Option("table", "--format", "-f", help="table (terminal), md, csv or json"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to this file (.md/.csv/.json) instead"),
    figure: Optional[Path] = typer.Option(None, "--figure", help="also draw the figure to this .svg or .png file"),
    resamples: int = typer.Option(2000, "--resamples", help="bootstrap resamples (pairs resampled whole)"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    device: str = typer.Option("auto", "--device", help="device for --score: auto, cpu or cuda[:N]"),
) -> None:
    """Pairwise accuracy of every per-image metric against the decisive human votes, per question, with the human
    ceiling (each rater against the others); 95% bootstrap intervals over pairs."""
    from molebench import ui
    from molebench.atomic import atomic_write_bytes, atomic_write_text
    from molebench.report.csv_safe import safe_frame
    from molebench.study import agreement

    fmt = _format(fmt, out)
    if figure is not None and figure.suffix.lower() not in FIGURE_SUFFIXES:
        raise _input_error(f"--figure {figure}: give a .svg or .png file name")
    if resamples < 100:
        raise _input_error(f"--resamples must be at least 100, got {resamples}")
    if score is not None:
        score_study(database, score, device)
    result = agreement.study_agreement(database, resamples, seed)
    for reason in result.skipped:
        ui.err.print(f"left out {reason}", soft_wrap=True, markup=False)
    if fmt == "table":
        print_wide(agreement_table(result))
    else:
        text = {"md": agreement.to_markdown, "json": agreement.to_json,
                "csv": lambda r: safe_frame(r.table).to_csv(index=False)}[fmt](result)
        if out is None:
            ui.out.file.write(text)
            ui.out.file.flush()
        else:
            atomic_write_text(out, text)
            ui.err.print(f"wrote {out}", soft_wrap=True, markup=False)
    if figure is not None:
        from molebench.report.agreement_plot import render

        rendered = render(result.table, figure.stem)
        if figure.suffix.lower() == ".svg":
            atomic_write_text(figure, rendered.svg)
        else:
            atomic_write_bytes(figure, rendered.png)
        ui.err.print(f"wrote {figure}", soft_wrap=True, markup=False)


def _input_error(message: str) -> Exception:
    from molebench.errors import InputError

    return InputError(message)


def _format(fmt: str, out: Optional[Path]) -> str:
    from molebench.study.agreement import FORMATS

    if fmt not in FORMATS:
        raise _input_error(f"--format: expected one of {', '.join(FORMATS)}, got '{fmt}'")
    if out is not None and fmt == "table":
        fmt = SUFFIX_FORMATS.get(out.suffix.lower(), "")
        if not fmt:
            raise _input_error(f"--out {out}: give --format md|csv|json or a .md/.csv/.json name")
    return fmt


def score_study(database: Path, names_option: str, device: str) -> None:
    """Score both runs of the study with `molebench score`'s path (resumable, images already scored are skipped);
    its summaries go to stderr so stdout keeps only the agreement output."""
    from molebench.registry import SCORERS
    from molebench.runner.score_command import score_run
    from molebench.study import db

    names = tuple(s.strip() for s in names_option.split(",") if s.strip())
    if not names:
        raise _input_error("--score is empty: name at least one scorer (see `molebench scorers`)")
    for name in names:  # NAME@face / NAME@hand: scorer NAME on the crops of that part; its kind is NAME's
        if SCORERS.get(name.partition("@")[0]).kind == "set":
            raise _input_error(f"--score {name}: a set-level metric has one value per run, not one per image, so it "
                               "cannot prefer one image of a pair")
    with contextlib.closing(db.connect(database)) as con:
        runs = db.read_runs(con)
    with contextlib.redirect_stdout(sys.stderr):
        for run in runs.values():
            score_run(run.path, names, device=device)


def print_wide(renderable) -> None:
    """Print to stdout; piped output is not squeezed into 80 columns (metric names stay whole)."""
    from rich.console import Console

    from molebench import ui

    (ui.out if ui.out.is_terminal else Console(width=160, highlight=False)).print(renderable)


def agreement_table(result):
    from rich.table import Table

    from molebench.study.agreement import HEADERS, display_rows

    table = Table(title="metric–human agreement (pairwise accuracy vs decisive votes)",
                  caption="human ties and n/a left out; a metric tie counts as wrong (ImageReward's rule); "
                          "ceiling = each rater vs the majority of the others; 95% CI: bootstrap over pairs")
    for column in HEADERS:
        table.add_column(column, justify="left" if column in ("question", "metric", "region") else "right")
    for cells in display_rows(result):
        table.add_row(*cells)
    return table


def register(study_app: typer.Typer) -> None:
    study_app.command("agreement")(agreement_command)
