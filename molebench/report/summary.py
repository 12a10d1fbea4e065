"""Per-run summary: mean and spread of each scorer metric (the quick look; `compare` does the statistics)."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from molebench.registry import SCORERS


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (scorer, version, metric): n, mean, std, and the display scale reports multiply by."""
    if scores.empty:
        return pd.DataFrame(columns=["scorer", "scorer_version", "metric", "n", "mean", "std", "display_scale"])
    grouped = scores.groupby(["scorer", "scorer_version", "metric"], sort=True)["value"]
    summary = grouped.agg(n="count", mean="mean", std="std").reset_index()
    summary["display_scale"] = [display_scale(s, m) for s, m in zip(summary["scorer"], summary["metric"])]
    return summary


def display_scale(scorer: str, metric: str) -> float:
    """Factor reports multiply raw values by (HPS ×100), from the scorer registry."""
    try:
        return float(SCORERS.get(scorer).display_scale.get(metric, 1.0))
    except Exception:  # noqa: BLE001 - an unregistered scorer in an old run is shown unscaled
        return 1.0


def paper_scale(scorer: str, metric: str) -> float:
    """Factor the MoLE paper's tables multiply raw values by (HPS ×100 and ImageReward ×100); the display scale
    where a scorer declares none."""
    try:
        cls = SCORERS.get(scorer)
        return float(cls.paper_scale.get(metric, cls.display_scale.get(metric, 1.0)))
    except Exception:  # noqa: BLE001 - an unregistered scorer in an old run is shown unscaled
        return 1.0


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in ("scorer", "version", "metric", "n", "mean", "std"):
        table.add_column(column, justify="right" if column in ("n", "mean", "std") else "left")
    for row in summary.itertuples():
        scale = row.display_scale
        label = f"{row.metric} ×{scale:g}" if scale != 1 else row.metric
        std = "" if pd.isna(row.std) else f"{row.std * scale:.4f}"
        table.add_row(row.scorer, row.scorer_version, label, str(row.n), f"{row.mean * scale:.4f}", std)
    return table
