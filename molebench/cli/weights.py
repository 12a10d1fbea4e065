"""`molebench weights`: for every registered model and scorer, where its weights are looked up, whether they are
here, and the exact command that fetches them on a connected machine (molebench itself never downloads)."""

from __future__ import annotations

import json
from typing import Any

import typer


def weights_report() -> list[dict[str, Any]]:
    """One row per registered model and scorer: kind, name, present, where (found path or places looked), fetch."""
    from molebench.registry import MODELS, SCORERS

    rows = []
    for kind, registry in (("model", MODELS), ("scorer", SCORERS)):
        for name, cls in registry.items():
            status = cls().weights_status()
            rows.append({"kind": kind, "name": name, "present": status.present, "where": status.where,
                         "fetch": status.fetch})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("weights")
    def weights_command(
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON (one object per entry)"),
    ) -> None:
        """Where each model's and scorer's weights are looked up, whether they are present, how to fetch them."""
        from molebench import ui

        rows = weights_report()
        if as_json:
            ui.out.print_json(json.dumps(rows))
            return
        for row in rows:
            state = "[green]present[/]" if row["present"] else "[red]missing[/]"
            ui.out.print(f"[bold]{row['name']}[/] ({row['kind']}): {state}", markup=True, soft_wrap=True)
            label = "found at" if row["present"] else "looked in"
            ui.out.print(f"  {label}: {row['where']}", markup=False, soft_wrap=True)
            if row["fetch"] and not row["present"]:
                ui.out.print(f"  fetch:    {row['fetch']}", markup=False, soft_wrap=True)
        missing = sum(not row["present"] for row in rows)
        ui.err.print(f"{len(rows) - missing} of {len(rows)} present; fetch commands put files in the Hugging Face "
                     "cache (fid/kid's Inception file in torch hub's cache): copy it here, or set "
                     "MOLEBENCH_WEIGHTS_<NAME> to a local copy")
