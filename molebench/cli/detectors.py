"""`molebench detectors validate [NAME...]`: recall and precision of face and hand detectors on real photographs
annotated by hand (molebench/data/people), read out of the package archives that `make install` fetches."""

from __future__ import annotations

from pathlib import Path

import typer

PHOTO_CACHE = Path(".cache/people-photos")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Face and hand detectors (the layer under the human-centric scorers).")
    app.add_typer(group, name="detectors")

    @group.callback(invoke_without_command=True)
    def list_command(ctx: typer.Context) -> None:
        """List registered detectors (without a subcommand); `validate` measures them."""
        if ctx.invoked_subcommand is not None:
            return
        from rich.console import Console
        from rich.table import Table

        from molebench import ui
        from molebench.registry import DETECTORS

        table = Table(title="detectors (measure them with `molebench detectors validate`)")
        for column in ("name", "parts", "description"):
            table.add_column(column, overflow="fold")
        for name, cls in DETECTORS.items():
            table.add_row(name, ", ".join(cls.parts), cls.description)
        console = ui.out if ui.out.is_terminal else Console(highlight=False, width=1000)
        console.print(table)

    @group.command("validate")
    def validate_command(
        names: list[str] = typer.Argument(None, help="registered detectors (default: all of them)"),
        photos: Path = typer.Option(PHOTO_CACHE, help="folder of the fetched package archives (`make install` "
                                    "fills .cache/people-photos in a checkout)"),
        device: str = typer.Option("cpu", help="device the detectors run on"),
        metamorphic: bool = typer.Option(False, help="also corrupt each clearly visible part (and the same spot "
                                         "beside it) and count how often its score drops beyond its noise (slow)"),
    ) -> None:
        """Recall (clearly visible parts, all parts), precision, and detections on photographs without people,
        per detector and part, as Markdown tables."""
        from molebench import ui
        from molebench.registry import DETECTORS
        from molebench.scoring.detect.base import PARTS
        from molebench.scoring.detect.metamorphic import metamorphic_cases
        from molebench.scoring.detect.metamorphic import table as metamorphic_table
        from molebench.scoring.detect.validation import PhotoSet, detect_all, score, table

        chosen = names or DETECTORS.names()
        for name in chosen:
            DETECTORS.check(name)
        photo_set = PhotoSet.load(photos)
        results, cases = {}, {}
        for name in chosen:
            ui.err.print(f"{name}: {len(photo_set.photos)} photographs", markup=False)
            detector = DETECTORS.get(name)(device=device)
            found = detect_all(detector, photo_set)
            results[name] = score(photo_set, found)
            if metamorphic:
                cases[name] = {part: metamorphic_cases(detector, photo_set, part, found) for part in PARTS}
        ui.out.print(table(results), markup=False, highlight=False, soft_wrap=True)
        if metamorphic:
            ui.out.print("\n" + metamorphic_table(cases), markup=False, highlight=False, soft_wrap=True)
