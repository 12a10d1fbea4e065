"""`molebench score RUN_DIR`: the scoring stage on its own (after `molebench run --no-score`, or with new scorers)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molebench.cli.run import (NUM_PROCESSES_HELP, REFERENCE_HELP, REGIONS_HELP, THREADS_HELP, WAIT_HELP,
                               parse_regions, relaunch)
from molebench.runner.preflight import check_scorer_weights


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score_command(
        ctx: typer.Context,
        run_dir: str = typer.Argument(..., help="run folder written by `molebench run`"),
        scorers: Optional[str] = typer.Option(None, "--scorers", help="comma list (default: the run's scorers)"),
        regions: Optional[str] = typer.Option(None, "--regions", help=REGIONS_HELP),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="images per scorer batch"),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
        reference: Optional[str] = typer.Option(None, "--reference", help=REFERENCE_HELP + " (default: the run's)"),
        num_processes: int = typer.Option(1, "--num-processes", min=1, help=NUM_PROCESSES_HELP),
        wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    ) -> None:
        """Score a run's images that have no score yet; merge, summarise, record the scorers (resumable)."""
        names = tuple(s.strip() for s in scorers.split(",") if s.strip()) if scorers is not None else None
        if names == ():
            from molebench.errors import UsageError

            raise UsageError("--scorers is empty: name at least one scorer (see `molebench scorers`)")
        if names and Path(run_dir).is_dir():  # a wrong folder is said first, as before
            check_scorer_weights(names)  # every missing file named before torch is imported
        from molebench.runner.score_command import score_run

        if num_processes > 1:
            relaunch(ctx, num_processes, run_dir, wait)
            return
        score_run(run_dir, names, device=device, batch_size=batch_size, threads=threads,
                  reference=str(Path(reference).expanduser().resolve()) if reference else None, wait=wait,
                  regions=parse_regions(regions))
