"""`molebench weights`: for every registered model and scorer, where its weights are looked up, whether they are
here, and the exact command that fetches them on a connected machine (molebench itself never downloads)."""

from __future__ import annotations

import json
from typing import Any, List, Optional

import typer


def weights_report(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per registered model and scorer (or per name in `names`, models and scorers alike): kind, name,
    present, where (found path or places looked), fetch, and whether the found files are a molebench replica."""
    from molebench.assets.weights import is_replica_path
    from molebench.errors import UsageError
    from molebench.registry import MODELS, SCORERS

    wanted = list(dict.fromkeys(names or []))
    unknown = [n for n in wanted if n not in MODELS and n not in SCORERS]
    if unknown:
        raise UsageError(f"no model or scorer named {', '.join(unknown)} (see `molebench models`, `molebench "
                         "scorers`)")
    rows = []
    for kind, registry in (("model", MODELS), ("scorer", SCORERS)):
        for name in registry.names():
            if wanted and name not in wanted:
                continue
            status = registry.get(name)().weights_status()
            rows.append({"kind": kind, "name": name, "present": status.present, "where": status.where,
                         "fetch": status.fetch, "replica": status.present and is_replica_path(status.where)})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("weights")
    def weights_command(
        names: Optional[List[str]] = typer.Argument(None, help="models or scorers to report (default: all)"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON (one object per entry)"),
    ) -> None:
        """Where each model's and scorer's weights are looked up, whether they are present, how to fetch them."""
        from molebench import ui

        rows = weights_report(names)
        if as_json:
            ui.out.print_json(json.dumps(rows))
            return
        for row in rows:
            state = "[green]present[/]" if row["present"] else "[red]missing[/]"
            if row["replica"]:
                state = "[yellow]present as a molebench replica (random weights: speed and code paths only)[/]"
            ui.out.print(f"[bold]{row['name']}[/] ({row['kind']}): {state}", markup=True, soft_wrap=True)
            label = "found at" if row["present"] else "looked in"
            ui.out.print(f"  {label}: {row['where']}", markup=False, soft_wrap=True)
            if row["fetch"] and not row["present"]:
                ui.out.print(f"  fetch:    {row['fetch']}", markup=False, soft_wrap=True)
        missing = sum(not row["present"] for row in rows)
        from molebench.errors import hf_hub_cache

        ui.err.print(f"{len(rows) - missing} of {len(rows)} present; fetch commands put files in the Hugging Face "
                     f"cache (fid/kid's Inception file in torch hub's cache): copy that cache into {hf_hub_cache()} "
                     "here, or set MOLEBENCH_WEIGHTS_<NAME> to a local copy", soft_wrap=True, markup=False)
