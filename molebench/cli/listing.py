"""`molebench models | scorers | benchmarks`: what is registered, and whether its weights are here."""

from __future__ import annotations

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_command() -> None:
        """List registered models: family, default settings, whether weights are here (`molebench weights NAME`
        prints where they are looked up and the command that fetches them)."""
        from molebench import ui
        from molebench.registry import MODELS

        table = Table(title="models", caption="fetch commands: molebench weights NAME")
        for column in ("name", "family", "pipeline", "defaults (steps, guidance, size, scheduler, GPU dtype)",
                       "weights"):
            table.add_column(column, overflow="fold", no_wrap=not column.startswith("defaults"))  # names whole
        for name, cls in MODELS.items():
            status = cls().weights_status()
            weights = "missing" if not status.present else ("offline" if cls.hub_id is None else "present")
            pipelines = " + ".join(filter(None, (getattr(cls, "pipeline_class", ""),
                                                 getattr(cls, "refiner_pipeline_class", ""))))
            table.add_row(name, cls.family, pipelines, default_settings(cls), weights)
        ui.out.print(table)  # piped: ui.PIPED_WIDTH columns, long cells folded (never cut)

    @app.command("scorers")
    def scorers_command() -> None:
        """List registered scorers: per-image or set-level, each metric's direction (↑ higher is better, ↓ lower)."""
        from molebench import ui
        from molebench.registry import SCORERS
        from molebench.scoring.base import metric_direction
        from molebench.store.summary import direction_label

        table = Table(title="scorers (metric ↑ higher is better, ↓ lower is better, · no direction: never gated)")
        for column in ("name", "kind", "metrics", "description"):
            table.add_column(column, overflow="fold", no_wrap=column != "description")  # the description wraps
        for name, cls in SCORERS.items():
            label = cls.description + (" \\[experimental]" if cls.experimental else "")  # escaped: not a rich tag
            metrics = ", ".join(f"{m} {direction_label(metric_direction(cls.higher_is_better, m))}"
                                for m in cls.metrics)
            kind = "set (one value per run)" if cls.kind == "set" else "image"
            table.add_row(name, kind, metrics, label)
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


def default_settings(cls) -> str:
    scheduler = cls.default_scheduler.removesuffix("Scheduler")
    width, height = cls.default_size
    return f"{cls.default_steps}, {cls.default_guidance:g}, {width}x{height}, {scheduler}, {cls.default_dtype_gpu}"
