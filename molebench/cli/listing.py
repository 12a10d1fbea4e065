"""`molebench models | scorers | benchmarks`: what is registered, and whether its weights are here."""

from __future__ import annotations

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_command() -> None:
        """List registered models with their default settings and whether weights are present."""
        from molebench import ui
        from molebench.registry import MODELS

        table = Table(title="models")
        for column in ("name", "family", "steps", "guidance", "size", "scheduler", "weights", "fetch"):
            table.add_column(column)
        for name, cls in MODELS.items():
            status = cls().weights_status()
            table.add_row(name, cls.family, str(cls.default_steps), f"{cls.default_guidance:g}",
                          "x".join(map(str, cls.default_size)), cls.default_scheduler,
                          "present" if status.present else "missing", "" if status.present else status.fetch)
        ui.out.print(table)

    @app.command("scorers")
    def scorers_command() -> None:
        """List registered scorers."""
        from molebench import ui
        from molebench.registry import SCORERS

        table = Table(title="scorers")
        for column in ("name", "metrics", "description"):
            table.add_column(column)
        for name, cls in SCORERS.items():
            label = cls.description + (" \\[experimental]" if cls.experimental else "")  # escaped: not a rich tag
            table.add_row(name, ", ".join(cls.metrics), label)
        ui.out.print(table)

    @app.command("benchmarks")
    def benchmarks_command() -> None:
        """List registered benchmarks."""
        from molebench import ui
        from molebench.registry import BENCHMARKS

        table = Table(title="benchmarks")
        table.add_column("name")
        table.add_column("description")
        for name, cls in BENCHMARKS.items():
            table.add_row(name, cls.description)
        ui.out.print(table)
