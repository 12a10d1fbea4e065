"""`molebench verify RUN [--repair]`: check every file of a run folder; exit 1 when any problem is found."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from molebench.cli.run import WAIT_HELP


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_command(
        run_dir: Path = typer.Argument(..., help="run folder written by `molebench run`"),
        repair: bool = typer.Option(False, "--repair", help="make damaged or missing images again (their scores "
                                    "are dropped and recomputed), merge leftovers, finish the run; says what it did"),
        wait: bool = typer.Option(False, "--wait", help=WAIT_HELP + " (with --repair)"),
    ) -> None:
        """Images decode and match the sha256 recorded when written, scores and summary match items, no leftovers."""
        from rich.console import Console

        from molebench import ui
        from molebench.store import lock
        from molebench.store.verify import verify

        if repair:
            from molebench.runner.repair_command import repair as run_repair

            actions = run_repair(run_dir, wait)
            for action in actions or ["nothing to repair"]:
                ui.err.print(f"repair: {action}", soft_wrap=True, markup=False)
        elif lock.is_locked(run_dir):
            ui.err.print(f"note: {lock.describe(run_dir)}; what it is still making is not counted as a problem",
                         soft_wrap=True, markup=False)
        folder, problems = verify(run_dir)
        images = 0 if folder.items is None else len(folder.items)
        if folder.unrecorded:
            ui.err.print(f"note: {folder.unrecorded} images have no recorded sha256 (made by an older molebench); "
                         "they decode, but a changed pixel cannot be told; `molebench verify --repair` records them",
                         soft_wrap=True, markup=False)
        if not problems:
            ui.out.print(f"{run_dir}: OK ({images} images, every file checked)", soft_wrap=True, markup=False)
            return
        console = ui.out if ui.out.is_terminal else Console(width=200, highlight=False)
        console.print(problem_table(problems, run_dir))  # piped: file names stay whole
        plural = "s" if len(problems) != 1 else ""
        ui.err.print(f"{len(problems)} problem{plural} in {run_dir}; `molebench verify --repair {run_dir}` does what "
                     "the repair column says", soft_wrap=True, markup=False)
        sys.exit(1)


def problem_table(problems, run_dir: Path):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"problems in {run_dir}")
    for column in ("check", "file", "problem", "repair"):
        table.add_column(column, overflow="fold")
    for problem in problems:
        table.add_row(*(Text(str(v)) for v in (problem.check, problem.path, problem.detail, problem.repair)))
    return table
